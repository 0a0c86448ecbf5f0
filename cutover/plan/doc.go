// Package plan cuts a checked runbook and inventory into batches (canary
// first, by tenant and tier) and says exactly which BGP routes and
// nftables set elements each batch changes, as text or JSON; it also
// snapshots the two files a run was started from, so that a restarted
// daemon rebuilds the same plan.
//
//	runbook.Load → New → *Plan → Routes / Dataplane / Changes / WriteText / WriteJSON
//
// A Plan is pure data: building and rendering it touches nothing.
package plan
