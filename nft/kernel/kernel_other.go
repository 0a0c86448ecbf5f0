//go:build !linux

package kernel

import (
	"errors"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/nft"
)

// New returns an error: the kernel dataplane needs Linux (nftables, netlink).
func New(cfg nft.Config, log zerolog.Logger) (nft.Dataplane, error) {
	return nil, errors.New("nft: the kernel dataplane needs Linux")
}
