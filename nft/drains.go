package nft

import (
	"slices"

	"github.com/cutover/cutover/nft/internal/iprange"
)

// KeptFinished is how many finished drains Counters still reports.
const KeptFinished = 16

// Drain is one drain as a dataplane keeps it (the Fake and the kernel's):
// its status, its addresses and the sites whose sets changed.
type Drain struct {
	Status DrainStatus
	Ranges []iprange.Range // the addresses, merged
	Sites  []string        // the sites whose sets changed
}

// RetireDrain appends the finished drain dr to finished, keeping the last
// KeptFinished.
func RetireDrain(finished []*Drain, dr *Drain) []*Drain {
	finished = append(finished, dr)
	if n := len(finished) - KeptFinished; n > 0 {
		finished = slices.Delete(finished, 0, n)
	}
	return finished
}

// CountDrains adds the drains to the counters of their sites: the finished
// ones (oldest first), then the active ones.
func CountDrains(out map[string]Counter, active, finished []*Drain) {
	for _, list := range [][]*Drain{finished, active} {
		for _, dr := range list {
			for _, site := range dr.Sites {
				c := out[site]
				c.AddDrain(dr.Status)
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
