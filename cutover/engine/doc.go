// Package engine runs a cutover: the state machine that takes batches
// through announce, convergence, gates and commit, rolls back on a failed
// gate or an operator's command, and pauses at go/no-go points.
//
// Deciding is apart from acting: decide(state, spec, now) is pure, and
// every effect is journaled as intent before it is applied. RunState is
// the one fold of the journal: Folder decodes each record once and folds
// it (Fold, Walk), and EventText writes each record's line for people; the
// daemon, the terminal view and the evidence report all read a run
// through them. The engine knows BGP and
// nftables only through the small interfaces of packages bgp and nft.
//
// The brake works when the journal does not: while the journal cannot be
// written (a full or failing disk), the run takes no step forward, and a
// rollback or pause acts at once, its records held in memory and written
// in order as soon as the journal takes them (journalstate.go).
package engine
