// Package serve starts the cutover daemon for real: it declares the
// daemon's flags once (AddFlags), wires the live backends (the embedded
// GoBGP speaker, the kernel nftables dataplane, network probes) and serves
// the API and metrics until its context ends. It is the only package that
// links GoBGP and nftables; cmd/cutover and a rehearsal's child daemon
// (RunIfChild) import it.
package serve
