// Package client talks to the cutover daemon over its unix socket: the
// CLI's and the lab rehearsal's way in. It reads the runbook and its
// inventory with the calling user's rights and sends their contents: the
// daemon, which runs as root, opens no file named in a request. It also
// holds the request and error bodies of the API as the client writes
// them; the daemon decodes them strictly (package daemon, api.go).
package client
