// Package deps pins the module's dependencies while the packages that use
// them are being written; it is removed once they all have importers.
package deps

import (
	_ "github.com/google/nftables"
	_ "github.com/mattn/go-isatty"
	_ "github.com/osrg/gobgp/v3/pkg/server"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/rs/zerolog"
	_ "github.com/santhosh-tekuri/jsonschema/v6"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "github.com/vishvananda/netlink"
	_ "github.com/vishvananda/netns"
	_ "gopkg.in/yaml.v3"
	_ "github.com/ti-mo/conntrack"
)
