// Package client talks to the cutover daemon over its unix socket: the
// CLI's and the lab rehearsal's way in. It also holds the request and
// error bodies of the API, which the daemon decodes and writes.
package client
