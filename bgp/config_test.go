package bgp

import (
	"net/netip"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{
		LocalAS:         65100,
		RouterID:        ip("10.255.0.2"),
		ListenPort:      -1,
		Peers:           []PeerConfig{{Address: ip("10.255.0.1"), AS: 65000, HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, Observe: ProofMirror}},
		GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 120 * time.Second},
		Limits:          labLimits(),
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"valid", func(*Config) {}, ""},
		{"valid v6 peer with defaults", func(c *Config) {
			c.Peers = append(c.Peers, PeerConfig{Address: ip("fd00:255::1"), AS: 65000, LocalAddress: ip("fd00:255::2"), Password: "s3cret"})
		}, ""},
		{"empty", func(c *Config) { *c = Config{} }, "local AS: must be set (1-4294967295)\n" +
			"router ID \"\": want a non-zero IPv4 address\n" +
			"peers: at least one peer is needed\n" +
			"limits: allowed ranges: at least one is needed\n" +
			"limits: max prefixes 0: must be at least 1"},
		{"v6 router id", func(c *Config) { c.RouterID = ip("fd00::1") }, "router ID \"fd00::1\": want a non-zero IPv4 address"},
		{"listen port", func(c *Config) { c.ListenPort = 70000 }, "listen port 70000: want -1 (do not listen), 0 (179) or 1-65535"},
		{"duplicate peer", func(c *Config) { c.Peers = append(c.Peers, c.Peers[0]) }, "peer 10.255.0.1: defined twice"},
		{"peer without AS", func(c *Config) { c.Peers[0].AS = 0 }, "peer 10.255.0.1: AS: must be set (1-4294967295)"},
		{"peer without address", func(c *Config) { c.Peers[0].Address = netip.Addr{} }, "peer \"\": address: want an IPv4 or IPv6 address"},
		{"local address family", func(c *Config) { c.Peers[0].LocalAddress = ip("fd00:255::2") }, "peer 10.255.0.1: local address fd00:255::2: not the same address family"},
		{"hold time too short", func(c *Config) { c.Peers[0].HoldTime = 2 * time.Second; c.Peers[0].Keepalive = time.Second }, "peer 10.255.0.1: hold time 2s: want whole seconds from 3s to 65535s (RFC 4271)"},
		{"keepalive not below hold", func(c *Config) { c.Peers[0].Keepalive = 9 * time.Second }, "peer 10.255.0.1: keepalive 9s: must be shorter than the hold time"},
		{"fractional keepalive", func(c *Config) { c.Peers[0].Keepalive = 1500 * time.Millisecond }, "peer 10.255.0.1: keepalive 1.5s: want whole seconds, at least 1s"},
		{"password too long", func(c *Config) { c.Peers[0].Password = string(make([]byte, 81)) }, "peer 10.255.0.1: password: longer than 80 bytes (TCP MD5 limit)"},
		{"restart time too long", func(c *Config) { c.GracefulRestart.RestartTime = 5000 * time.Second }, "graceful restart: restart time 1h23m20s: want whole seconds from 1s to 1h8m15s"},
		{"restart time without GR", func(c *Config) { c.GracefulRestart.Enabled = false }, "graceful restart: restart time set but graceful restart not enabled"},
		{"long-lived stale time off", func(c *Config) { c.GracefulRestart.LongLivedStaleTime = -1 }, ""},
		{"long-lived stale time too long", func(c *Config) { c.GracefulRestart.LongLivedStaleTime = 16777216 * time.Second }, "graceful restart: long-lived stale time 4660h20m16s: want whole seconds from 1s to 4660h20m15s"},
		{"fractional long-lived stale time", func(c *Config) { c.GracefulRestart.LongLivedStaleTime = 1500 * time.Millisecond }, "graceful restart: long-lived stale time 1.5s: want whole seconds from 1s to 4660h20m15s"},
		{"long-lived stale time without GR", func(c *Config) {
			c.GracefulRestart = GracefulRestart{LongLivedStaleTime: time.Hour}
		}, "graceful restart: long-lived stale time set but graceful restart not enabled"},
		{"bad limits", func(c *Config) { c.Limits.MaxPrefixes = 0 }, "limits: max prefixes 0: must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.edit(&c)
			got := ""
			if err := c.Validate(); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestConfigWithDefaults(t *testing.T) {
	c := Config{GracefulRestart: GracefulRestart{Enabled: true}, Peers: []PeerConfig{{Address: ip("10.255.0.1")}, {Address: ip("10.255.0.5"), HoldTime: 9 * time.Second, Port: 1790}}}
	d := c.WithDefaults()
	if d.ListenPort != 179 || d.GracefulRestart.RestartTime != DefaultRestartTime {
		t.Errorf("listen port %d, restart time %s; want 179, %s", d.ListenPort, d.GracefulRestart.RestartTime, DefaultRestartTime)
	}
	if d.GracefulRestart.LongLivedStaleTime != DefaultLongLivedStaleTime {
		t.Errorf("long-lived stale time %s, want %s", d.GracefulRestart.LongLivedStaleTime, DefaultLongLivedStaleTime)
	}
	if off := (Config{GracefulRestart: GracefulRestart{Enabled: true, LongLivedStaleTime: -1}}).WithDefaults(); off.GracefulRestart.LongLivedStaleTime >= 0 {
		t.Errorf("long-lived stale time -1 became %s: it must stay off", off.GracefulRestart.LongLivedStaleTime)
	}
	if (Config{}).WithDefaults().GracefulRestart.LongLivedStaleTime != 0 {
		t.Error("long-lived stale time set without graceful restart")
	}
	if p := d.Peers[0]; p.Port != 179 || p.HoldTime != 90*time.Second || p.Keepalive != 30*time.Second {
		t.Errorf("peer 0: port %d hold %s keepalive %s; want 179 1m30s 30s", p.Port, p.HoldTime, p.Keepalive)
	}
	if p := d.Peers[1]; p.Port != 1790 || p.HoldTime != 9*time.Second || p.Keepalive != 3*time.Second {
		t.Errorf("peer 1: port %d hold %s keepalive %s; want 1790 9s 3s", p.Port, p.HoldTime, p.Keepalive)
	}
	if c.Peers[0].Port != 0 {
		t.Error("WithDefaults changed its receiver's peers")
	}
	if c.WithDefaults().ListenPort != 179 || (Config{ListenPort: -1}).WithDefaults().ListenPort != -1 {
		t.Error("listen port -1 must stay -1")
	}
}
