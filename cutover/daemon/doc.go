// Package daemon is the long-running side of cutover: it owns the journal
// file, the BGP speaker, the dataplane and the prober (through Backends),
// re-applies a journaled state after a restart, serves the local HTTP API
// on a unix socket (api.go), and runs a whole runbook against fakes for
// --dry-run. The live backends are wired in package serve, so that this
// package and its users do not link GoBGP or nftables.
package daemon
