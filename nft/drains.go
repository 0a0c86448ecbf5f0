package nft

import (
	"slices"

	"github.com/cutover/cutover/nft/internal/iprange"
)

// keptFinished is how many finished drains Counters still reports.
const keptFinished = 16

// drain is one drain (see DrainStatus) of the Fake.
type drain struct {
	status DrainStatus
	ranges []iprange.Range // the addresses, merged
	sites  []string        // the sites whose sets changed
}

// retire appends the finished drain dr to finished, keeping the last
// keptFinished.
func retire(finished []*drain, dr *drain) []*drain {
	finished = append(finished, dr)
	if n := len(finished) - keptFinished; n > 0 {
		finished = slices.Delete(finished, 0, n)
	}
	return finished
}

// countDrains adds the drains to the counters of their sites: the finished
// ones (oldest first), then the active ones.
func countDrains(out map[string]Counter, active, finished []*drain) {
	for _, list := range [][]*drain{finished, active} {
		for _, dr := range list {
			for _, site := range dr.sites {
				c := out[site]
				c.AddDrain(dr.status)
				out[site] = c
			}
		}
	}
}

// AddDrain adds a drain that involves c's site to c: st (with its own copy
// of Prefixes) to Drains, and, when st is not done, one to Draining and its
// deadline to DrainDeadline. Dataplane implementations build a Counter's
// drains with it: the last 16 finished drains (oldest first), then the
// unfinished ones.
func (c *Counter) AddDrain(st DrainStatus) {
	st.Prefixes = slices.Clone(st.Prefixes)
	c.Drains = append(c.Drains, st)
	if !st.Done {
		c.Draining++
		if st.Deadline.After(c.DrainDeadline) {
			c.DrainDeadline = st.Deadline
		}
	}
}
