//go:build !unix

package runbook

import "os"

// openNonblock opens path for reading; outside Unix there are no named
// pipes in the file system to block on.
func openNonblock(path string) (*os.File, error) { return os.Open(path) }

func setBlocking(*os.File) error { return nil }
