package nft

import "slices"

// keptFinished is how many finished drains Counters still reports.
const keptFinished = 16

// drain is one drain (see DrainStatus) of the kernel dataplane or the fake.
type drain struct {
	status DrainStatus
	ranges []ipRange // the addresses, merged
	sites  []string  // the sites whose sets changed
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
// ones (oldest first) and the active ones to Drains, the active ones to
// Draining and DrainDeadline.
func countDrains(out map[string]Counter, active, finished []*drain) {
	for _, list := range [][]*drain{finished, active} {
		for _, dr := range list {
			for _, site := range dr.sites {
				c := out[site]
				st := dr.status
				st.Prefixes = slices.Clone(st.Prefixes)
				c.Drains = append(c.Drains, st)
				if !st.Done {
					c.Draining++
					if st.Deadline.After(c.DrainDeadline) {
						c.DrainDeadline = st.Deadline
					}
				}
				out[site] = c
			}
		}
	}
}
