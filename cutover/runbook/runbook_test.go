package runbook_test

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/plan"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/cutover/runbook"
	"github.com/cutover/cutover/cutover/runbook/runbooktest"
)

// errLines returns err's lines with dir taken out of the paths.
func errLines(err error, dir string) []string {
	return strings.Split(strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), ""), "\n")
}

func TestBaseRunbook(t *testing.T) {
	rb, _, warns, err := runbook.Load("testdata/base/runbook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	// Defaults.
	pr := rb.BGP.Peers[0]
	if pr.Port != 179 || pr.Observe != bgp.ProofMirror || pr.HoldTime != 9*time.Second || pr.Keepalive != 3*time.Second {
		t.Errorf("peer defaults: %+v", pr)
	}
	if rb.BGP.ListenPort != -1 || !rb.BGP.GracefulRestart.Enabled || rb.BGP.GracefulRestart.RestartTime != 120*time.Second {
		t.Errorf("bgp defaults: %+v", rb.BGP)
	}
	probe := rb.Gates[1]
	want := runbook.GateConfig{Kind: runbook.GateProbe, MinHealthy: 0.99, Rise: 2, Fall: 2, Interval: time.Second, Timeout: time.Second, Concurrency: 256, Within: time.Minute}
	if probe != want {
		t.Errorf("probe gate defaults:\n%+v\nwant\n%+v", probe, want)
	}
	if s := rb.Sites["skm1"].Steering; s != (runbook.Steering{Mark: 0x0c070000, Table: 7000}) {
		t.Errorf("skm1 steering %+v", s)
	}
	if s := rb.Sites["skm2"].Steering; s != (runbook.Steering{Mark: 0x0c070001, Table: 7001}) {
		t.Errorf("skm2 steering %+v", s)
	}
	if !rb.Dataplane.Enabled || rb.Dataplane.Table != "cutover" || rb.FailurePolicy != engine.RollbackBatch {
		t.Errorf("dataplane/policy defaults: %+v %s", rb.Dataplane, rb.FailurePolicy)
	}
	if rb.InventoryPath != filepath.Join("testdata", "base", "inventory.csv") {
		t.Errorf("inventory path %q", rb.InventoryPath)
	}
	if got := rb.Line("bgp.peers[0].address"); got != 18 {
		t.Errorf("line of bgp.peers[0].address = %d, want 18", got)
	}
}

func TestRunbookErrors(t *testing.T) {
	tests := []struct {
		name      string
		edits     []runbooktest.Edit
		inventory string
		want      []string
	}{
		{"version missing", []runbooktest.Edit{{"version: 1\n", ""}}, "",
			[]string{"runbook.yaml: version: required: write version: 1"}},
		{"version 2", []runbooktest.Edit{{"version: 1", "version: 2"}}, "",
			[]string{`runbook.yaml:1: version: unsupported version: this cutover reads version 1 (value "2")`}},
		{"unknown field with a typo", []runbooktest.Edit{{"hold: 1s", "hodl: 1s"}}, "",
			[]string{`runbook.yaml:26: hodl: unknown field (did you mean "hold"?)`}},
		{"unknown nested field", []runbooktest.Edit{{"keepalive: 3s}", "keepalive: 3s, pasword: x}"}}, "",
			[]string{`runbook.yaml:18: bgp.peers[0].pasword: unknown field (did you mean "password"?)`}},
		{"unknown field far from any", []runbooktest.Edit{{"hold: 1s", "colour: blue"}}, "",
			[]string{`runbook.yaml:26: colour: unknown field (known: version, name, description, inventory, tenants, sites, move, fallback, bgp, allowed_prefixes, max_prefixes, min_prefix_length, batching, gates, failure_policy, readiness, hold, window, confirm, dataplane, require_rehearsal)`}},
		{"duplicate key", []runbooktest.Edit{{"hold: 1s", "hold: 1s\nhold: 2s"}}, "",
			[]string{`runbook.yaml:27: hold: duplicate key (first on line 26)`}},
		{"wrong shape", []runbooktest.Edit{{"tenants: [alpha, beta, gamma]", "tenants: alpha"}}, "",
			[]string{`runbook.yaml:4: tenants: want a list, not a single value`}},
		{"name", []runbooktest.Edit{{"name: base", "name: Base Run"}}, "",
			[]string{`runbook.yaml:2: name: use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit (value "Base Run")`}},
		{"inventory file missing", []runbooktest.Edit{{"inventory: inventory.csv", "inventory: nope.csv"}}, "",
			[]string{`runbook.yaml:3: inventory: cannot read the inventory nope.csv: no such file or directory (value "nope.csv")`}},
		{"inventory not given", []runbooktest.Edit{{"inventory: inventory.csv\n", ""}}, "",
			[]string{`runbook.yaml: inventory: required: the inventory file, relative to the runbook`}},
		{"unknown site", []runbooktest.Edit{{"to: skm2}", "to: skm3}"}}, "",
			[]string{`runbook.yaml:13: move.to: unknown site (sites: skm1, skm2) (value "skm3")`}},
		{"source is target", []runbooktest.Edit{{"to: skm2}", "to: skm1}"}}, "",
			[]string{`runbook.yaml:13: move.to: the same site as move.from: nothing would move (value "skm1")`}},
		{"fallback unknown", []runbooktest.Edit{{"hold: 1s", "hold: 1s\nfallback: skm9"}}, "",
			[]string{`runbook.yaml:27: fallback: unknown site (sites: skm1, skm2) (value "skm9")`}},
		{"fallback not the source without announce_source", []runbooktest.Edit{{"hold: 1s", "hold: 1s\nfallback: skm2"}}, "",
			[]string{`runbook.yaml:27: fallback: without bgp.announce_source the baseline is the network's own routes, so they must lead to move.from (skm1) (value "skm2")`}},
		{"site name", []runbooktest.Edit{{"  skm2:", "  SKM-2:"}, {"to: skm2}", "to: SKM-2}"}}, "",
			[]string{`runbook.yaml:9: sites.SKM-2: site names are 1-24 of a-z, 0-9 and '_' (they name nft sets) (value "SKM-2")`}},
		{"next-hops of the wrong family", []runbooktest.Edit{{`{ipv4: 10.255.2.2, ipv6: "fd00:255:2::2"}`, `{ipv4: "fd00:255:2::2", ipv6: 10.255.2.2}`}}, "",
			[]string{
				`runbook.yaml:10: sites.skm2.next_hop.ipv4: not an IPv4 address (value "fd00:255:2::2")`,
				`runbook.yaml:10: sites.skm2.next_hop.ipv6: not an IPv6 address (value "10.255.2.2")`,
			}},
		{"next-hop not an address", []runbooktest.Edit{{`ipv4: 10.255.2.2,`, `ipv4: 10.255.2,`}}, "",
			[]string{`runbook.yaml:10: sites.skm2.next_hop.ipv4: IPv4 address too short (value "10.255.2")`}},
		{"no next-hop for a family in use", []runbooktest.Edit{{`{ipv4: 10.255.2.2, ipv6: "fd00:255:2::2"}`, `{ipv4: 10.255.2.2}`}}, "",
			[]string{`runbook.yaml:10: sites.skm2.next_hop: the inventory has IPv6 addresses: the target site needs an ipv6 next-hop`}},
		{"no next-hop at all", []runbooktest.Edit{{`next_hop: {ipv4: 10.255.2.2, ipv6: "fd00:255:2::2"}`, `next_hop: {}`}}, "",
			[]string{`runbook.yaml:10: sites.skm2.next_hop: required: ipv4 and/or ipv6 next-hop of the site`}},
		{"source next-hop needed with announce_source", []runbooktest.Edit{{`{ipv4: 10.255.1.2, ipv6: "fd00:255:1::2"}`, `{ipv4: 10.255.1.2}`}, {"  router_id: 10.255.0.2", "  router_id: 10.255.0.2\n  announce_source: true"}}, "",
			[]string{`runbook.yaml:7: sites.skm1.next_hop: the inventory has IPv6 addresses: the source site needs an ipv6 next-hop`}},
		{"community", []runbooktest.Edit{{`["65100:2"]`, `["65100:2", "65100:70000"]`}}, "",
			[]string{`runbook.yaml:11: sites.skm2.communities[1]: both halves must be 0-65535 (value "65100:70000")`}},
		{"prepend", []runbooktest.Edit{{"med: 10", "prepend: 11"}}, "",
			[]string{`runbook.yaml:12: sites.skm2.prepend: at most 10 (value "11")`}},
		{"steering table taken", []runbooktest.Edit{{"med: 10", "steering: {table: 7000}"}}, "",
			[]string{`runbook.yaml:12: sites.skm2.steering.table: same table as site skm1 (value "7000")`}},
		{"steering table reserved", []runbooktest.Edit{{"med: 10", "steering: {table: 254, mark: 0}"}}, "",
			[]string{
				`runbook.yaml:12: sites.skm2.steering.mark: must not be 0 (unmarked packets) (value "0")`,
				`runbook.yaml:12: sites.skm2.steering.table: reserved table (default, main, local) (value "254")`,
			}},
		{"AS 0", []runbooktest.Edit{{"local_as: 65100", "local_as: 0"}}, "",
			[]string{`runbook.yaml:15: bgp.local_as: AS 0 is reserved (RFC 7607) (value "0")`}},
		{"AS missing", []runbooktest.Edit{{"  local_as: 65100\n", ""}}, "",
			[]string{`runbook.yaml:14: bgp.local_as: required: the controller's AS number`}},
		{"AS negative", []runbooktest.Edit{{"local_as: 65100", "local_as: -1"}}, "",
			[]string{`runbook.yaml:15: bgp.local_as: must not be negative (value "-1")`}},
		{"AS too big", []runbooktest.Edit{{"local_as: 65100", "local_as: 4294967296"}}, "",
			[]string{`runbook.yaml:15: bgp.local_as: out of range (0 to 4294967295) (value "4294967296")`}},
		{"peer AS_TRANS", []runbooktest.Edit{{"as: 65000", "as: 23456"}}, "",
			[]string{`runbook.yaml:18: bgp.peers[0].as: AS 23456 is AS_TRANS (RFC 6793) (value "23456")`}},
		{"router id not IPv4", []runbooktest.Edit{{"router_id: 10.255.0.2", `router_id: "fd00:255::2"`}}, "",
			[]string{`runbook.yaml:16: bgp.router_id: must be an IPv4 address (the BGP identifier is 32 bits) (value "fd00:255::2")`}},
		{"duplicate peer", []runbooktest.Edit{{"keepalive: 3s}", "keepalive: 3s}\n    - {address: 10.255.0.1, as: 65001}"}}, "",
			[]string{`runbook.yaml:19: bgp.peers[1].address: duplicate peer (also bgp.peers[0]) (value "10.255.0.1")`}},
		{"peer is the router id", []runbooktest.Edit{{"address: 10.255.0.1", "address: 10.255.0.2"}}, "",
			[]string{`runbook.yaml:18: bgp.peers[0].address: the controller's own router id: a peer is another router (value "10.255.0.2")`}},
		{"IPv6 peer without IPv6 next-hop", []runbooktest.Edit{
			{`{ipv4: 10.255.2.2, ipv6: "fd00:255:2::2"}`, `{ipv4: 10.255.2.2}`},
			{"keepalive: 3s}", "keepalive: 3s}\n    - {address: \"fd00:255::1\", as: 65000}"}}, "",
			[]string{
				`runbook.yaml:10: sites.skm2.next_hop: the inventory has IPv6 addresses: the target site needs an ipv6 next-hop`,
				`runbook.yaml:19: bgp.peers[1].address: IPv6 peer, but the target site skm2 has no ipv6 next-hop (value "fd00:255::1")`,
			}},
		{"hold time too short", []runbooktest.Edit{{"hold_time: 9s, keepalive: 3s", "hold_time: 2s, keepalive: 1s"}}, "",
			[]string{`runbook.yaml:18: bgp.peers[0].hold_time: want 0 (no keepalives) or at least 3s (RFC 4271) (value "2s")`}},
		{"keepalive not below hold time", []runbooktest.Edit{{"keepalive: 3s", "keepalive: 9s"}}, "",
			[]string{`runbook.yaml:18: bgp.peers[0].keepalive: want at least 1s and less than hold_time 9s (usually a third) (value "9s")`}},
		{"password twice", []runbooktest.Edit{{"keepalive: 3s}", "keepalive: 3s, password: s3cret, password_env: BGP_PW}"}}, "",
			[]string{`runbook.yaml:18: bgp.peers[0].password_env: give password or password_env, not both (value "BGP_PW")`}},
		{"graceful restart time", []runbooktest.Edit{{"  router_id: 10.255.0.2", "  router_id: 10.255.0.2\n  graceful_restart: {restart_time: 5000s}"}}, "",
			[]string{`runbook.yaml:17: bgp.graceful_restart.restart_time: want 1s to 4095s (a 12-bit field) (value "1h23m20s")`}},
		{"bool", []runbooktest.Edit{{"  router_id: 10.255.0.2", "  router_id: 10.255.0.2\n  announce_source: yes"}}, "",
			[]string{`runbook.yaml:17: bgp.announce_source: want true or false (value "yes")`}},
		{"allowed prefix with host bits", []runbooktest.Edit{{"[10.64.0.0/14,", "[10.64.0.1/14,"}}, "",
			[]string{`runbook.yaml:19: allowed_prefixes[0]: host bits set: write 10.64.0.0/14 (value "10.64.0.1/14")`}},
		{"allowed everything", []runbooktest.Edit{{"[10.64.0.0/14,", "[0.0.0.0/0,"}}, "",
			[]string{`runbook.yaml:19: allowed_prefixes[0]: a /0 allows everything: list the VM ranges (value "0.0.0.0/0")`}},
		{"prefixes outside the allowed ranges", []runbooktest.Edit{{"[10.64.0.0/14,", "[10.64.0.0/27,"}}, "",
			[]string{
				`inventory.csv:11: address: outside allowed_prefixes (10.64.0.0/27, fd00:64::/48) (value "10.64.0.32/31")`,
				`inventory.csv:12: address: outside allowed_prefixes (10.64.0.0/27, fd00:64::/48) (value "10.64.0.34/32")`,
			}},
		{"more prefixes than max_prefixes", []runbooktest.Edit{{"max_prefixes: 100", "max_prefixes: 10"}}, "",
			[]string{`runbook.yaml:20: max_prefixes: the inventory has 11 prefixes, more than max_prefixes (value "10")`}},
		{"far more rows than max_prefixes: checked only so far", nil, manyRows(12000, map[int]string{3: "bad", 11000: "worse"}),
			[]string{
				`runbook.yaml:20: max_prefixes: the inventory has 12000 prefixes, more than max_prefixes; it was checked only up to line 10001 (value "100")`,
				`inventory.csv:4: address: not an IP address: unable to parse IP (value "bad")`,
			}},
		{"far more rows and no max_prefixes", []runbooktest.Edit{{"max_prefixes: 100\n", ""}}, manyRows(12000, map[int]string{3: "bad", 11000: "worse"}),
			[]string{
				`runbook.yaml: max_prefixes: required: the most prefixes this runbook may announce (a safety cap)`,
				`inventory.csv:4: address: not an IP address: unable to parse IP (value "bad")`,
			}},
		{"allowed ranges and prefixes in two halves (a default route)", []runbooktest.Edit{{"[10.64.0.0/14,", "[0.0.0.0/1, 128.0.0.0/1,"}},
			"name,address,tenant,tier,probe\nhalf1,0.0.0.0/1,alpha,3,\nhalf2,128.0.0.0/1,beta,3,\n",
			[]string{
				`runbook.yaml:19: allowed_prefixes[0]: shorter than /12, the runbook's min_prefix_length.allowed_ipv4: list the VM ranges (value "0.0.0.0/1")`,
				`runbook.yaml:19: allowed_prefixes[1]: shorter than /12, the runbook's min_prefix_length.allowed_ipv4: list the VM ranges (value "128.0.0.0/1")`,
				`inventory.csv:2: address: shorter than /24, the runbook's min_prefix_length.ipv4 (value "0.0.0.0/1")`,
				`inventory.csv:3: address: shorter than /24, the runbook's min_prefix_length.ipv4 (value "128.0.0.0/1")`,
			}},
		{"IPv6 aggregates", []runbooktest.Edit{{`"fd00:64::/48"]`, `"fd00::/8"]`}},
			"name,address,tenant,tier,probe\na1,10.64.0.10,alpha,3,\nb1,fd00:6400::/40,beta,3,\n",
			[]string{
				`runbook.yaml:19: allowed_prefixes[1]: shorter than /32, the runbook's min_prefix_length.allowed_ipv6: list the VM ranges (value "fd00::/8")`,
				`inventory.csv:3: address: shorter than /48, the runbook's min_prefix_length.ipv6 (value "fd00:6400::/40")`,
			}},
		{"a small subnet under a raised minimum", []runbooktest.Edit{{"max_prefixes: 100", "max_prefixes: 100\nmin_prefix_length: {ipv4: 32, ipv6: 128}"}}, "",
			[]string{`inventory.csv:11: address: shorter than /32, the runbook's min_prefix_length.ipv4 (value "10.64.0.32/31")`}},
		{"min_prefix_length out of range", []runbooktest.Edit{{"max_prefixes: 100", "max_prefixes: 100\nmin_prefix_length: {ipv4: 0, ipv6: 129, allowed_ipv4: 33, allowed_ipv6: -1}"}}, "",
			[]string{
				`runbook.yaml:21: min_prefix_length.ipv4: want a prefix length from 1 to 32 (value "0")`,
				`runbook.yaml:21: min_prefix_length.ipv6: want a prefix length from 1 to 128 (value "129")`,
				`runbook.yaml:21: min_prefix_length.allowed_ipv4: want a prefix length from 1 to 32 (value "33")`,
				`runbook.yaml:21: min_prefix_length.allowed_ipv6: want a prefix length from 1 to 128 (value "-1")`,
			}},
		{"min_prefix_length typo", []runbooktest.Edit{{"max_prefixes: 100", "max_prefixes: 100\nmin_prefix_length: {ipv5: 16}"}}, "",
			[]string{`runbook.yaml:21: min_prefix_length.ipv5: unknown field (did you mean "ipv4"?)`}},
		{"max_prefixes missing", []runbooktest.Edit{{"max_prefixes: 100\n", ""}}, "",
			[]string{`runbook.yaml: max_prefixes: required: the most prefixes this runbook may announce (a safety cap)`}},
		{"batch size 0", []runbooktest.Edit{{"size: 4", "size: 0"}}, "",
			[]string{`runbook.yaml:21: batching.size: must be at least 1 (value "0")`}},
		{"max_per_tenant 0", []runbooktest.Edit{{"max_per_tenant: 2", "max_per_tenant: 0"}}, "",
			[]string{`runbook.yaml:21: batching.max_per_tenant: must be at least 1 (leave it out for no limit) (value "0")`}},
		{"canary negative", []runbooktest.Edit{{"canary: 2", "canary: -1"}}, "",
			[]string{`runbook.yaml:21: batching.canary: must be 0 (no canary) or more (value "-1")`}},
		{"canary would need tier 1", []runbooktest.Edit{{"canary: 2", "canary: 8"}}, "",
			[]string{`runbook.yaml:21: batching.canary: only 7 VMs are tier 2 or 3 and the canary never takes tier 1: lower canary (value "8")`}},
		{"canary cannot be filled under the tenant cap", []runbooktest.Edit{{"canary: 2", "canary: 7"}}, "",
			[]string{`runbook.yaml:21: batching.canary: max_per_tenant 2 leaves only 6 tier 2-3 VMs for the canary (value "7")`}},
		{"unknown tenant", []runbooktest.Edit{{"[alpha, beta, gamma]", "[alpha, beta]"}}, "",
			[]string{`inventory.csv:10: tenant: unknown tenant: not in the runbook's tenants (3 VMs) (value "gamma")`}},
		{"unknown gate kind", []runbooktest.Edit{{"{kind: probe, min_healthy: 99%}", "{kind: ping}"}}, "",
			[]string{`runbook.yaml:24: gates[1].kind: unknown gate kind: want bgp, probe or prometheus (value "ping")`}},
		{"gate kind missing", []runbooktest.Edit{{"{kind: probe, min_healthy: 99%}", "{min_healthy: 99%}"}}, "",
			[]string{`runbook.yaml:24: gates[1].kind: required: bgp, probe or prometheus`}},
		{"field of another gate kind", []runbooktest.Edit{{"{kind: bgp, timeout: 30s}", `{kind: bgp, timeout: 30s, url: "http://x"}`}}, "",
			[]string{`runbook.yaml:23: gates[0].url: not a field of a bgp gate (it takes timeout)`}},
		{"duration without unit", []runbooktest.Edit{{"timeout: 30s", "timeout: 30"}}, "",
			[]string{`runbook.yaml:23: gates[0].timeout: want a duration with a unit, such as 30s or 2m (value "30")`}},
		{"percentage without %", []runbooktest.Edit{{"min_healthy: 99%", "min_healthy: 99"}}, "",
			[]string{`runbook.yaml:24: gates[1].min_healthy: want a fraction from 0 to 1: write 99% for a percentage (value "99")`}},
		{"percentage over 100", []runbooktest.Edit{{"min_healthy: 99%", "min_healthy: 120%"}}, "",
			[]string{`runbook.yaml:24: gates[1].min_healthy: want a percentage from 0% to 100% (value "120%")`}},
		{"probe gate that can never pass", []runbooktest.Edit{{"min_healthy: 99%}", "rise: 5, interval: 2s, within: 5s}"}}, "",
			[]string{`runbook.yaml:24: gates[1].within: shorter than rise × interval (10s): the gate could never pass (value "5s")`}},
		{"prometheus gate incomplete", []runbooktest.Edit{{"{kind: probe, min_healthy: 99%}", `{kind: prometheus, url: "ftp://prom"}`}}, "",
			[]string{
				`runbook.yaml:24: gates[1].url: want an http:// or https:// URL of the Prometheus server (value "ftp://prom")`,
				`runbook.yaml:24: gates[1].query: required: a PromQL instant query`,
				`runbook.yaml:24: gates[1].op: required: <, <=, >, >=, == or !=`,
				`runbook.yaml:24: gates[1].value: required: the number the query's value is compared with`,
			}},
		{"bgp gate without an observed peer", []runbooktest.Edit{{"keepalive: 3s}", "keepalive: 3s, observe: false}"}}, "",
			[]string{`runbook.yaml:23: gates[0].kind: a bgp gate needs at least one observed peer (observe: bmp, mirror or sent) (value "bgp")`}},
		{"observe unknown", []runbooktest.Edit{{"keepalive: 3s}", "keepalive: 3s, observe: birdc}"}}, "",
			[]string{`runbook.yaml:18: bgp.peers[0].observe: want bmp, mirror, sent or false (value "birdc")`,
				`runbook.yaml:23: gates[0].kind: a bgp gate needs at least one observed peer (observe: bmp, mirror or sent) (value "bgp")`}},
		{"observe fallback without bmp", []runbooktest.Edit{{"keepalive: 3s}", "keepalive: 3s, observe: mirror, observe_fallback: sent}"}}, "",
			[]string{`runbook.yaml:18: bgp.peers[0].observe_fallback: only a peer with observe: bmp has a fallback (observe is mirror) (value "sent")`}},
		{"observe fallback bmp", []runbooktest.Edit{{"keepalive: 3s}", "keepalive: 3s, observe: bmp, observe_fallback: bmp}"}}, "",
			[]string{`runbook.yaml:18: bgp.peers[0].observe_fallback: want mirror or sent: the proof used while the router has no BMP session (value "bmp")`}},
		{"bmp listen without port", []runbooktest.Edit{{"keepalive: 3s}", "keepalive: 3s, observe: bmp}\n  bmp: {listen: \"10.255.0.2:0\"}"}}, "",
			[]string{`runbook.yaml:19: bgp.bmp.listen: want ADDR:PORT with a port, e.g. [::]:11019 (value "10.255.0.2:0")`}},
		{"weak proof slower than the gate", []runbooktest.Edit{{"keepalive: 3s}", "keepalive: 3s, observe: sent}"}, {"{kind: bgp, timeout: 30s}", "{kind: bgp, timeout: 5s}"}}, "",
			[]string{`runbook.yaml:23: gates[0].timeout: peer 10.255.0.1 is proven by the weak proof (sent), which waits for its next KEEPALIVE (every 3s): give the gate at least 6s, or the peer a shorter keepalive (value "5s")`}},
		{"weak proof without keepalives", []runbooktest.Edit{{"hold_time: 9s, keepalive: 3s}", "hold_time: 0s, keepalive: 0s, observe: bmp, observe_fallback: sent}"}}, "",
			[]string{`runbook.yaml:23: gates[0].timeout: peer 10.255.0.1 is proven by the weak proof (sent), which waits for a KEEPALIVE, and its hold_time 0 turns keepalives off (value "30s")`}},
		{"two bgp gates", []runbooktest.Edit{{"{kind: probe, min_healthy: 99%}", "{kind: bgp}"}}, "",
			[]string{`runbook.yaml:24: gates[1].kind: a second bgp gate (also gates[0]): merge them (value "bgp")`}},
		{"failure policy", []runbooktest.Edit{{"failure_policy: rollback-batch", "failure_policy: retry"}}, "",
			[]string{`runbook.yaml:25: failure_policy: want rollback-batch, rollback-all or pause (value "retry")`}},
		{"readiness unknown", []runbooktest.Edit{{"failure_policy: rollback-batch", "failure_policy: rollback-batch\nreadiness: later"}}, "",
			[]string{`runbook.yaml:26: readiness: want skip, pause or off (value "later")`}},
		{"readiness without a dataplane", []runbooktest.Edit{{"failure_policy: rollback-batch", "failure_policy: rollback-batch\nreadiness: pause\ndataplane: {enabled: false}"}}, "",
			[]string{`runbook.yaml:26: readiness: needs the dataplane (dataplane.enabled: true): the check probes each VM through the target's steering table before the move; set readiness: off to move without it (value "pause")`}},
		{"window", []runbooktest.Edit{{"hold: 1s", `hold: 1s
window: {start: "25:00", end: "1:00", timezone: Mars/Olympus, days: [fri, funday]}`}}, "",
			[]string{
				`runbook.yaml:27: window.start: want a time of day HH:MM from 00:00 to 23:59 (value "25:00")`,
				`runbook.yaml:27: window.end: want a time of day HH:MM from 00:00 to 23:59 (value "1:00")`,
				`runbook.yaml:27: window.timezone: unknown time zone: want an IANA name such as Europe/Oslo or UTC (value "Mars/Olympus")`,
				`runbook.yaml:27: window.days[1]: want mon, tue, wed, thu, fri, sat or sun (value "funday")`,
			}},
		{"empty window", []runbooktest.Edit{{"hold: 1s", `hold: 1s
window: {start: "23:00", end: "23:00"}`}}, "",
			[]string{
				`runbook.yaml:27: window.end: the same time as start: the window would be empty (leave window out for always open) (value "23:00")`,
				`runbook.yaml:27: window.timezone: required: an IANA time zone such as Europe/Oslo`,
			}},
		{"confirm points", []runbooktest.Edit{{"[before-start, after-canary, before-end]", "[before-start, after-lunch, before-batch:0, before-start]"}}, "",
			[]string{
				`runbook.yaml:27: confirm[1]: want before-start, after-canary, before-batch:N, after-batch:N or before-end (value "after-lunch")`,
				`runbook.yaml:27: confirm[2]: batch numbers start at 1 (batch-01) (value "before-batch:0")`,
				`runbook.yaml:27: confirm[3]: listed twice (also confirm[0]) (value "before-start")`,
			}},
		{"confirm points with operators", []runbooktest.Edit{{"[before-start, after-canary, before-end]",
			"[{point: before-start, operators: 0}, {point: after-canary, operators: 6}, {operators: 2}, {point: before-end, operater: 2}, [before-end]]"}}, "",
			[]string{
				`runbook.yaml:27: confirm[2].point: missing: name the go/no-go point (before-start, after-canary, before-batch:N, after-batch:N or before-end)`,
				`runbook.yaml:27: confirm[3].operater: unknown field (did you mean "operators"?)`,
				`runbook.yaml:27: confirm[4]: want a point (before-start) or a mapping {point: before-start, operators: 2}, not a list`,
				`runbook.yaml:27: confirm[0].operators: want 1 to 5 different operators (value "0")`,
				`runbook.yaml:27: confirm[1].operators: want 1 to 5 different operators (value "6")`,
			}},
		{"after-canary without a canary", []runbooktest.Edit{{"canary: 2", "canary: 0"}}, "",
			[]string{`runbook.yaml:27: confirm[1]: batching.canary is 0: there is no canary batch (value "after-canary")`}},
		{"confirm before a batch that does not exist", []runbooktest.Edit{{"[before-start, after-canary, before-end]", "[before-batch:2, after-batch:3]"}}, "",
			[]string{`runbook.yaml:27: confirm[1]: the plan has batch-01 to batch-02 (value "after-batch:3")`}},
		{"dataplane table", []runbooktest.Edit{{"hold: 1s", "hold: 1s\ndataplane: {table: \"my table\", netns: \"a/b\"}"}}, "",
			[]string{
				`runbook.yaml:27: dataplane.table: use 1-32 letters, digits, '_' or '-' (value "my table")`,
				`runbook.yaml:27: dataplane.netns: a network namespace name: 1-64 letters, digits, '.', '_' or '-' (value "a/b")`,
			}},
		{"YAML syntax", []runbooktest.Edit{{"to: skm2}", "to: skm2"}}, "",
			[]string{`runbook.yaml:12: YAML syntax: did not find expected ',' or '}'`}},
		{"two documents", []runbooktest.Edit{{"hold: 1s", "hold: 1s\n---\nversion: 1"}}, "",
			[]string{`runbook.yaml:27: more than one YAML document (a second --- ?)`}},
		{"runbook and inventory errors together", []runbooktest.Edit{{"name: base", "name: Base"}},
			"name,address,tenant,tier,probe\na1,10.64.0.10,alpha,3,\na2,10.64.0.10,alpha,3,\na3,10.64.0.11,beta,3,\n",
			[]string{
				`runbook.yaml:2: name: use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit (value "Base")`,
				`inventory.csv:3: address: address already belongs to vm "a1" (line 2) (value "10.64.0.10")`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := runbooktest.WriteCase(t, "testdata/base", tt.edits, tt.inventory)
			pl, _, err := plan.Load(path)
			if err == nil {
				t.Fatalf("accepted: %d batches", len(pl.Batches))
			}
			var verrs runbook.ValidationErrors
			if !errors.As(err, &verrs) {
				t.Fatalf("error %T is not ValidationErrors: %v", err, err)
			}
			if got := errLines(err, filepath.Dir(path)); !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// manyRows returns a CSV inventory of n VMs in 10.65.0.0/16 with the
// addresses of some data rows (counted from 1) replaced.
func manyRows(n int, bad map[int]string) string {
	var b strings.Builder
	b.WriteString("name,address,tenant,tier,probe\n")
	tenants := []string{"alpha", "beta", "gamma"}
	for i := 1; i <= n; i++ {
		addr := fmt.Sprintf("10.65.%d.%d", i>>8, i&255)
		if a, ok := bad[i]; ok {
			addr = a
		}
		fmt.Fprintf(&b, "vm%d,%s,%s,3,\n", i, addr, tenants[i%3])
	}
	return b.String()
}

// TestMinPrefixLength: the defaults, and a runbook that lowers them to
// move a subnet on purpose.
func TestMinPrefixLength(t *testing.T) {
	rb, _, _, err := runbook.Load("testdata/base/runbook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := runbook.MinPrefixLength{IPv4: 24, IPv6: 48, AllowedIPv4: 12, AllowedIPv6: 32}
	if rb.MinPrefixLength != want {
		t.Errorf("defaults %+v, want %+v", rb.MinPrefixLength, want)
	}
	inventory := "name,address,tenant,tier,probe\na1,10.64.0.10,alpha,3,\nb1,10.65.0.0/16,beta,3,\nb2,fd00:6400::/40,beta,3,\n"
	lowered := []runbooktest.Edit{
		{"[10.64.0.0/14, \"fd00:64::/48\"]", "[10.0.0.0/8, \"fd00::/16\"]"},
		{"max_prefixes: 100", "max_prefixes: 100\nmin_prefix_length: {ipv4: 16, ipv6: 40, allowed_ipv4: 8, allowed_ipv6: 16}"},
	}
	rb, inv, _, err := runbook.Load(runbooktest.WriteCase(t, "testdata/base", lowered, inventory))
	if err != nil {
		t.Fatal(err)
	}
	want = runbook.MinPrefixLength{IPv4: 16, IPv6: 40, AllowedIPv4: 8, AllowedIPv6: 16}
	if rb.MinPrefixLength != want || inv.Prefixes() != 3 {
		t.Errorf("lowered: %+v, %d prefixes", rb.MinPrefixLength, inv.Prefixes())
	}
}

func TestRunbookFileErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, data string
		want       []string
	}{
		{"empty.yaml", "", []string{"empty.yaml: the file is empty"}},
		{"comment.yaml", "# nothing yet\n", []string{"comment.yaml: the file is empty"}},
		{"list.yaml", "- version: 1\n", []string{"list.yaml:1: want a mapping of runbook fields (version: 1, name: ..., ...), not a list"}},
		{"missing.yaml", "", []string{"missing.yaml: cannot read the runbook: no such file or directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name)
			if tt.name != "missing.yaml" {
				if err := os.WriteFile(path, []byte(tt.data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, _, _, err := runbook.Load(path)
			if err == nil {
				t.Fatal("accepted")
			}
			if got := errLines(err, dir); !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestEveryMistakeAtOnce: a runbook with mistakes in nearly every section
// and an inventory with several bad rows report all of them, in file and
// line order, in one go.
func TestEveryMistakeAtOnce(t *testing.T) {
	_, warns, err := plan.Load("testdata/bad/runbook.yaml")
	if err == nil {
		t.Fatal("accepted")
	}
	want, rerr := os.ReadFile("testdata/bad/errors.txt")
	if rerr != nil {
		t.Fatal(rerr)
	}
	if got := err.Error() + "\n"; got != string(want) {
		t.Errorf("errors:\n%s\nwant (testdata/bad/errors.txt):\n%s", got, want)
	}
	var ws []string
	for _, w := range warns {
		ws = append(ws, w.String())
	}
	wantWarns := []string{
		"testdata/bad/runbook.yaml:6: sites.skm2: not used by move: ignored",
		"testdata/bad/inventory.csv:1: ignoring extra column(s): owner",
	}
	if !slices.Equal(ws, wantWarns) {
		t.Errorf("warnings %q, want %q", ws, wantWarns)
	}
}

func TestRunbookWarnings(t *testing.T) {
	tests := []struct {
		name  string
		edits []runbooktest.Edit
		want  []string
	}{
		{"none", nil, nil},
		{"unused site", []runbooktest.Edit{{"move: {", "  dr: {next_hop: {ipv4: 10.255.5.2}}\nmove: {"}},
			[]string{"runbook.yaml:13: sites.dr: not used by move: ignored"}},
		{"no gates", []runbooktest.Edit{{"gates:\n  - {kind: bgp, timeout: 30s}\n  - {kind: probe, min_healthy: 99%}", "gates: []"}},
			[]string{"runbook.yaml:22: gates: no gates: every batch commits without a check"}},
		{"local_pref towards eBGP", []runbooktest.Edit{{"med: 10", "local_pref: 200"}},
			[]string{"runbook.yaml:12: sites.skm2.local_pref: local_pref is only sent to iBGP peers and every peer is eBGP: use med or prepend"}},
		{"probe gate without probes", nil, nil},
		{"observed iBGP peer", []runbooktest.Edit{{"keepalive: 3s}", "keepalive: 3s}\n    - {address: 10.255.0.9, as: 65100}"}},
			[]string{"runbook.yaml:19: bgp.peers[1].observe: peer 10.255.0.9 is iBGP, and no router sends a peer's routes back over iBGP: the bgp gate cannot see its view by mirror (observe: bmp)"}},
		{"unobserved iBGP peer", []runbooktest.Edit{{"keepalive: 3s}", "keepalive: 3s}\n    - {address: 10.255.0.9, as: 65100, observe: false}"}}, nil},
		{"iBGP peer observed by bmp", []runbooktest.Edit{{"keepalive: 3s}", "keepalive: 3s}\n    - {address: 10.255.0.9, as: 65100, observe: bmp}"}}, nil},
		{"weak proof", []runbooktest.Edit{{"keepalive: 3s}", "keepalive: 3s, observe: sent}"}},
			[]string{"runbook.yaml:18: bgp.peers[0].observe: peer 10.255.0.1: the bgp gate rests on the weak proof (sent: the UPDATEs went out and the session held across a KEEPALIVE, not that the router installed them); observe: bmp proves it"}},
		{"weak fallback: the plan says so, no warning", []runbooktest.Edit{{"keepalive: 3s}", "keepalive: 3s, observe: bmp,\n       observe_fallback: sent}"}},
			nil},
		{"bmp listen unused", []runbooktest.Edit{{"keepalive: 3s}", "keepalive: 3s}\n  bmp: {listen: \"[::]:5000\"}"}},
			[]string{"runbook.yaml:19: bgp.bmp.listen: no peer has observe: bmp: the BMP station is not started"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inventory := ""
			if tt.name == "probe gate without probes" {
				inventory = "name,address,tenant,tier\na1,10.64.0.10,alpha,3\nb1,10.64.0.11,beta,3\n"
				tt.want = []string{"runbook.yaml:24: gates[1]: no VM in the inventory has a probe: the probe gate always passes"}
			}
			path := runbooktest.WriteCase(t, "testdata/base", tt.edits, inventory)
			_, _, warns, err := runbook.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range warns {
				got = append(got, strings.ReplaceAll(w.String(), filepath.Dir(path)+string(filepath.Separator), ""))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("warnings %q, want %q", got, tt.want)
			}
		})
	}
}

// TestConfirmOperators reads both shapes of a confirm entry: a point that
// needs two operators keeps its place among the others.
func TestConfirmOperators(t *testing.T) {
	path := runbooktest.WriteCase(t, "testdata/base", []runbooktest.Edit{{"[before-start, after-canary, before-end]",
		"[{point: before-start, operators: 2}, after-canary, {point: before-end}]"}}, "")
	pl, _, err := plan.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rb := pl.Runbook
	if want := []string{"before-start", "after-canary", "before-end"}; !slices.Equal(rb.Confirm, want) {
		t.Errorf("Confirm = %v, want %v", rb.Confirm, want)
	}
	if want := map[string]int{"before-start": 2}; !maps.Equal(rb.ConfirmOperators, want) {
		t.Errorf("ConfirmOperators = %v, want %v", rb.ConfirmOperators, want)
	}
	if got := pl.Batches[0].Confirm; !slices.Equal(got, []string{"before-start"}) {
		t.Errorf("batch 0 confirm = %v", got)
	}
}
