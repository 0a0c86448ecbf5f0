// Command cutover moves live traffic for virtual servers between datacenters
// with BGP and nftables, batch by batch, behind health gates.
package main

import "os"

func main() {
	a := newApp()
	os.Exit(a.execute(newRootCmd(a)))
}
