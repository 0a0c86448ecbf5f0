// Command cutover moves live traffic for virtual servers between datacenters
// with BGP and nftables, batch by batch, behind health gates.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "cutover:", err)
		os.Exit(exitCode(err))
	}
}
