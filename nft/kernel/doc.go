// Package kernel is the nft.Dataplane of a Linux gateway: New programs the
// owned nftables table over netlink (google/nftables, and mdlayher/netlink
// for fast element dumps), the ip rules and per-site routes
// (vishvananda/netlink), and drains flows through conntrack, in the current
// or a given network namespace. One Apply is one nftables transaction, read
// back afterwards; drift (hand edits) is reported or corrected.
//
// What the table holds, and how a State is validated and its sets compared,
// comes from nft/internal/layout, which package nft's Validate, Render and
// Fake use too: the kernel lists the table as nft.Render prints it. Off
// Linux, New returns an error.
package kernel
