package runbook_test

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cutover/cutover/cutover/runbook"

	"github.com/cutover/cutover/cutover/runbook/runbooktest"
)

func TestParseInventoryErrors(t *testing.T) {
	const head = "name,address,tenant,tier,probe\n"
	tests := []struct {
		name string
		file string // its extension picks the format
		data string
		want []string
	}{
		{"empty file", "i.csv", "", []string{"i.csv: the inventory has no VMs (the file is empty)"}},
		{"header only", "i.csv", head, []string{"i.csv: the inventory has no VMs"}},
		{"missing columns", "i.csv", "name,address,probe\nvm1,10.64.0.1,\n",
			[]string{`i.csv:1: header lacks column(s) tenant, tier: want name,address,tenant,tier,probe (value "name,address,probe")`}},
		{"no header", "i.csv", "vm1,10.64.0.1,t,1,\n",
			[]string{`i.csv:1: no header: the first row must be name,address,tenant,tier,probe (value "vm1,10.64.0.1,t,1,")`}},
		{"duplicate column", "i.csv", "name,address,tenant,tier,Address\nvm1,10.64.0.1,t,1,10.64.0.2\n",
			[]string{"i.csv:1: address: column appears twice in the header"}},
		{"bad address", "i.csv", head + "vm1,10.64.0.300,t,1,\n",
			[]string{`i.csv:2: address: not an IP address: IPv4 field has value >255 (value "10.64.0.300")`}},
		{"not an address", "i.csv", head + "vm1,vm1.example.org,t,1,\n",
			[]string{`i.csv:2: address: not an IP address: unexpected character (value "vm1.example.org")`}},
		{"missing address", "i.csv", head + "vm1,,t,1,\n",
			[]string{`i.csv:2: address: required: an IPv4 or IPv6 address or prefix`}},
		{"host bits", "i.csv", head + "vm1,10.64.1.7/24,t,1,\n",
			[]string{`i.csv:2: address: host bits set: the prefix is 10.64.1.0/24, the host 10.64.1.7/32 (value "10.64.1.7/24")`}},
		{"default route v4", "i.csv", head + "vm1,0.0.0.0/0,t,1,\n",
			[]string{`i.csv:2: address: a default route is never announced (value "0.0.0.0/0")`}},
		{"default route v6", "i.csv", head + "vm1,::/0,t,1,\n",
			[]string{`i.csv:2: address: a default route is never announced (value "::/0")`}},
		{"loopback", "i.csv", head + "vm1,127.0.0.1,t,1,\n",
			[]string{`i.csv:2: address: not a routable unicast address (value "127.0.0.1")`}},
		{"ipv4-mapped", "i.csv", head + "vm1,::ffff:10.64.0.1,t,1,\n",
			[]string{`i.csv:2: address: IPv4-mapped IPv6 address: write it as 10.64.0.1 (value "::ffff:10.64.0.1")`}},
		{"zone", "i.csv", head + "vm1,fd00::1%eth0,t,1,\n",
			[]string{`i.csv:2: address: zoned address (%eth0) is not routable (value "fd00::1%eth0")`}},
		{"same address twice on a VM", "i.csv", head + "vm1,10.64.0.1,t,1,\nvm1,10.64.0.1/32,t,1,\n",
			[]string{`i.csv:3: address: duplicate address of vm "vm1" (also on line 2) (value "10.64.0.1/32")`}},
		{"address on two VMs", "i.csv", head + "vm1,10.64.0.1,t,1,\nvm2,10.64.0.1,t,1,\n",
			[]string{`i.csv:3: address: address already belongs to vm "vm1" (line 2) (value "10.64.0.1")`}},
		{"overlapping prefixes", "i.csv", head + "net,10.64.1.0/24,t,1,\nvm2,10.64.1.7,t,1,\nvm3,10.64.2.7,t,1,\n",
			[]string{`i.csv:3: address: overlaps 10.64.1.0/24 of vm "net" (line 2) (value "10.64.1.7/32")`}},
		{"nested overlaps v6", "i.csv", head + "a,fd00:64::/64,t,1,\nb,fd00:64::/96,t,1,\nc,fd00:64::1,t,1,\n",
			[]string{
				`i.csv:3: address: overlaps fd00:64::/64 of vm "a" (line 2) (value "fd00:64::/96")`,
				`i.csv:4: address: overlaps fd00:64::/96 of vm "b" (line 3) (value "fd00:64::1/128")`,
			}},
		{"tier out of range", "i.csv", head + "vm1,10.64.0.1,t,4,\nvm2,10.64.0.2,t,0,\nvm3,10.64.0.3,t,high,\nvm4,10.64.0.4,t,,\n",
			[]string{
				`i.csv:2: tier: want 1, 2 or 3 (1 = most critical) (value "4")`,
				`i.csv:3: tier: want 1, 2 or 3 (1 = most critical) (value "0")`,
				`i.csv:4: tier: want 1, 2 or 3 (1 = most critical) (value "high")`,
				`i.csv:5: tier: required: 1, 2 or 3 (1 = most critical)`,
			}},
		{"probe syntax", "i.csv", head + "a,10.64.0.1,t,1,ftp:21\nb,10.64.0.2,t,1,tcp\nc,10.64.0.3,t,1,http:0/\nd,10.64.0.4,t,1,icmp:1\ne,10.64.0.5,t,1,https:443/a b\n",
			[]string{
				`i.csv:2: probe: unknown probe: want empty, icmp, tcp:PORT, http:PORT/PATH or https:PORT/PATH (value "ftp:21")`,
				`i.csv:3: probe: tcp needs a port: write tcp:PORT (value "tcp")`,
				`i.csv:4: probe: port "0": want 1-65535 (value "http:0/")`,
				`i.csv:5: probe: icmp takes no port: write icmp (value "icmp:1")`,
				`i.csv:6: probe: path "/a b": no spaces, control characters or # (value "https:443/a b")`,
			}},
		{"missing tenant and name", "i.csv", head + ",10.64.0.1,,1,\n",
			[]string{`i.csv:2: name: required`, `i.csv:2: tenant: required`}},
		{"name with a space", "i.csv", head + "web 01,10.64.0.1,t,1,\n",
			[]string{`i.csv:2: name: no spaces or control characters (value "web 01")`}},
		{"bad tenant", "i.csv", head + "vm1,10.64.0.1,a/b,1,\n",
			[]string{`i.csv:2: tenant: use letters, digits, spaces, '-', '_' or '.' (value "a/b")`}},
		{"rows of one VM disagree", "i.csv", head + "vm1,10.64.0.1,t,1,tcp:80\nvm1,10.64.0.2,u,2,tcp:81\n",
			[]string{
				`i.csv:3: tenant: vm "vm1" has tenant "t" on line 2 (value "u")`,
				`i.csv:3: tier: vm "vm1" has tier 1 on line 2 (value "2")`,
				`i.csv:3: probe: vm "vm1" has probe "tcp:80" on line 2 (value "tcp:81")`,
			}},
		{"too many fields", "i.csv", head + "vm1,10.64.0.1,t,1,,extra\n",
			[]string{`i.csv:2: row has 6 fields, the header 5 (an unquoted ',' in a value?)`}},
		{"bare quote", "i.csv", head + "vm\"1,10.64.0.1,t,1,\n",
			[]string{`i.csv:2: CSV syntax: bare " in non-quoted-field`}},
		{"utf-16", "i.csv", "\xff\xfen\x00a\x00", []string{"i.csv: the file is UTF-16: save it as CSV UTF-8"}},
		{"latin-1 tenant", "i.csv", head + "vm1,10.64.0.1,troms\xf8,1,\n",
			[]string{"i.csv:2: tenant: not valid UTF-8 (save the file as UTF-8) (value \"troms\\xf8\")"}},
		{"errors on many rows are all reported", "i.csv", head + "vm1,10.64.0.1,t,1,\nvm2,bad,t,1,\nvm3,10.64.0.3,t,9,\nvm4,10.64.0.1,t,1,\n",
			[]string{
				`i.csv:3: address: not an IP address: unable to parse IP (value "bad")`,
				`i.csv:4: tier: want 1, 2 or 3 (1 = most critical) (value "9")`,
				`i.csv:5: address: address already belongs to vm "vm1" (line 2) (value "10.64.0.1")`,
			}},
		{"yaml not a list", "i.yaml", "name: vm1\n", []string{"i.yaml:1: want a list of VMs (- name: ... address: ...), not a mapping"}},
		{"yaml address and addresses", "i.yaml", "- {name: vm1, address: 10.64.0.1, addresses: [10.64.0.2], tenant: t, tier: 1}\n",
			[]string{"i.yaml:1: addresses: give address or addresses, not both"}},
		{"yaml empty addresses", "i.yaml", "- {name: vm1, addresses: [], tenant: t, tier: 1}\n",
			[]string{"i.yaml:1: addresses: empty list: a VM needs at least one address"}},
		{"yaml nested value", "i.yaml", "- name: vm1\n  address: 10.64.0.1\n  tenant: {a: b}\n  tier: 1\n",
			[]string{"i.yaml:3: tenant: want a single value, not a mapping"}},
		{"yaml duplicate key", "i.yaml", "- name: vm1\n  address: 10.64.0.1\n  name: vm2\n  tenant: t\n  tier: 1\n",
			[]string{"i.yaml:3: [0].name: duplicate key (first on line 1)"}},
		{"yaml syntax", "i.yaml", "- name: vm1\n  address: [\n", []string{"i.yaml:2: YAML syntax: did not find expected node content"}},
		{"json not an array", "i.json", `{"vms": []}`, []string{`i.json:1: want a JSON array of VMs: [{"name": ..., "address": ...}, ...]`}},
		{"json bad tier", "i.json", "[\n  {\"name\": \"vm1\", \"address\": \"10.64.0.1\", \"tenant\": \"t\", \"tier\": 1.5}\n]\n",
			[]string{`i.json:2: tier: want 1, 2 or 3 (1 = most critical) (value "1.5")`}},
		{"unknown format", "i.xlsx", "PK", []string{`i.xlsx: unknown inventory format: want a .csv, .yaml, .yml or .json file (value ".xlsx")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, _, err := runbook.ParseInventory(tt.file, []byte(tt.data))
			if err == nil {
				t.Fatalf("accepted: %d VMs", len(inv.VMs))
			}
			var verrs runbook.ValidationErrors
			if !errors.As(err, &verrs) {
				t.Fatalf("error %T is not ValidationErrors: %v", err, err)
			}
			if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestParseInventoryRealWorld accepts what spreadsheet exports look like.
func TestParseInventoryRealWorld(t *testing.T) {
	tests := []struct {
		fixture  string
		vms      int
		prefixes int
		warnings []string
	}{
		// BOM, CRLF, spaces around values and in the header, columns in
		// another order and upper case, extra columns, IPv6, a quoted value,
		// a blank row and a row of empty cells.
		{"bom-crlf-extra.csv", 5, 7, []string{"testdata/inventory/bom-crlf-extra.csv:1: ignoring extra column(s): owner, os, (unnamed)"}},
		// Excel with a Norwegian locale: semicolons; a comment line.
		{"semicolon.csv", 3, 3, nil},
		// Tabs, no probe column.
		{"tabs.csv", 2, 2, nil},
		{"vms.yaml", 3, 5, []string{"testdata/inventory/vms.yaml:5: owner: ignoring unknown field"}},
		{"vms.json", 2, 3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			inv, warns, err := runbook.LoadInventory(filepath.Join("testdata", "inventory", tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			if len(inv.VMs) != tt.vms || inv.Prefixes() != tt.prefixes {
				t.Errorf("got %d VMs, %d prefixes; want %d, %d", len(inv.VMs), inv.Prefixes(), tt.vms, tt.prefixes)
			}
			var got []string
			for _, w := range warns {
				got = append(got, w.String())
			}
			if !slices.Equal(got, tt.warnings) {
				t.Errorf("warnings %q, want %q", got, tt.warnings)
			}
			runbooktest.CheckInventory(t, inv)
		})
	}
}

func TestParseInventoryValues(t *testing.T) {
	inv, _, err := runbook.LoadInventory("testdata/inventory/bom-crlf-extra.csv")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, vm := range inv.VMs {
		var ps []string
		for _, p := range vm.Prefixes {
			ps = append(ps, p.String())
		}
		got[vm.Name] = strings.Join([]string{vm.Tenant, string(rune('0' + vm.Tier)), vm.Probe.String(), strings.Join(ps, " ")}, "|")
	}
	want := map[string]string{
		"unn-dips-01":  "unn|1|http:80/|10.64.0.10/32 fd00:64::a/128",
		"unn-web-01":   "unn|3|http:8080/health?full=1|10.64.0.11/32",
		"nlsh-pacs-01": "nlsh|2|tcp:104|10.64.0.12/32 10.64.0.13/32",
		"hsyk-ad-01":   "Helse Førde|2||10.64.1.0/28",
		"hsyk-ad-02":   "Helse Førde|2|icmp|fd00:64:1::/64",
	}
	if !maps.Equal(got, want) {
		t.Errorf("got\n%v\nwant\n%v", got, want)
	}
	if inv.VMs[0].Tenant != "Helse Førde" || inv.VMs[0].Line != 6 {
		t.Errorf("first VM %+v: want tenant order and line 6", inv.VMs[0])
	}
}

func TestParseProbe(t *testing.T) {
	tests := []struct {
		in   string
		want runbook.Probe
		str  string
	}{
		{"", runbook.Probe{}, ""},
		{"icmp", runbook.Probe{Kind: runbook.ProbeICMP}, "icmp"},
		{"ICMP", runbook.Probe{Kind: runbook.ProbeICMP}, "icmp"},
		{"tcp:80", runbook.Probe{Kind: runbook.ProbeTCP, Port: 80}, "tcp:80"},
		{"http:80/", runbook.Probe{Kind: runbook.ProbeHTTP, Port: 80, Path: "/"}, "http:80/"},
		{"http:80", runbook.Probe{Kind: runbook.ProbeHTTP, Port: 80, Path: "/"}, "http:80/"},
		{"https:8443/api/health?x=1", runbook.Probe{Kind: runbook.ProbeHTTPS, Port: 8443, Path: "/api/health?x=1"}, "https:8443/api/health?x=1"},
	}
	for _, tt := range tests {
		got, err := runbook.ParseProbe(tt.in)
		if err != nil || got != tt.want || got.String() != tt.str {
			t.Errorf("ParseProbe(%q) = %+v, %v (%q); want %+v (%q)", tt.in, got, err, got.String(), tt.want, tt.str)
		}
		again, err := runbook.ParseProbe(got.String())
		if err != nil || again != got {
			t.Errorf("round trip of %q: %+v, %v", tt.in, again, err)
		}
	}
}

func FuzzParseInventory(f *testing.F) {
	for _, name := range []string{"bom-crlf-extra.csv", "semicolon.csv", "tabs.csv", "vms.yaml", "vms.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", "inventory", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint8(slices.Index([]string{".csv", ".yaml", ".json"}, filepath.Ext(name))))
	}
	f.Add([]byte("name,address,tenant,tier,probe\nvm1,10.64.0.1,t,1,\nvm1,10.64.0.0/31,t,1,\n"), uint8(0))
	f.Add([]byte("name,address,tenant,tier,probe\na,fd00::/8,t,3,http:1/x\nb,fd00::1,t,2,tcp:1\n"), uint8(0))
	f.Add([]byte("name;address;tenant;tier\n\"a;b\";10.0.0.1;t;1\n"), uint8(0))
	f.Add([]byte("- {name: a, addresses: [10.0.0.1, '::1'], tenant: t, tier: 2}\n- &x {name: b}\n- *x\n"), uint8(1))
	f.Add([]byte("[{\"name\": \"a\", \"address\": \"10.0.0.1/8\", \"tenant\": \"t\", \"tier\": \"3\"}]"), uint8(2))
	exts := []string{".csv", ".yaml", ".json"}
	f.Fuzz(func(t *testing.T, data []byte, format uint8) {
		name := "fuzz" + exts[int(format)%len(exts)]
		inv, _, err := runbook.ParseInventory(name, data)
		if err != nil {
			var verrs runbook.ValidationErrors
			if !errors.As(err, &verrs) || len(verrs) == 0 {
				t.Fatalf("error is not a non-empty ValidationErrors: %v", err)
			}
			return
		}
		runbooktest.CheckInventory(t, inv)
		again, _, err := runbook.ParseInventory(name, data)
		if err != nil || len(again.VMs) != len(inv.VMs) || again.Digest != inv.Digest {
			t.Fatalf("second parse differs: %v", err)
		}
		for i := range inv.VMs {
			a, b := inv.VMs[i], again.VMs[i]
			if a.Name != b.Name || !slices.Equal(a.Prefixes, b.Prefixes) || a.Tier != b.Tier || a.Probe != b.Probe {
				t.Fatalf("second parse differs at %q", a.Name)
			}
		}
	})
}
