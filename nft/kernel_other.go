//go:build !linux

package nft

import (
	"errors"

	"github.com/rs/zerolog"
)

// New returns an error: the kernel dataplane needs Linux (nftables, netlink).
func New(cfg Config, log zerolog.Logger) (Dataplane, error) {
	return nil, errors.New("nft: the kernel dataplane needs Linux")
}
