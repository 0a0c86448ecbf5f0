package clab

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/cutover/serve"
	"github.com/cutover/cutover/internal/golden"
	"github.com/cutover/cutover/lab"
)

// clabSchema compiles containerlab's schema (testdata/containerlab, see
// its README). The file declares draft-07 but its brief-link "endpoints"
// rule uses the 2020-12 keyword prefixItems, which a draft-07 validator
// ignores; so the declaration is removed and the schema compiled as
// draft 2020-12.
func clabSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	return compileClabSchema(t, jsonschema.Draft2020)
}

// compileClabSchema compiles the schema as draft.
func compileClabSchema(t *testing.T, draft *jsonschema.Draft) *jsonschema.Schema {
	t.Helper()
	path := filepath.Join("testdata", "containerlab", "clab.schema.json")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	m, ok := doc.(map[string]any)
	if !ok {
		t.Fatalf("%s: not a JSON object", path)
	}
	delete(m, "$schema")
	c := jsonschema.NewCompiler()
	c.DefaultDraft(draft)
	if err := c.AddResource("https://containerlab.dev/clab.schema.json", m); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("https://containerlab.dev/clab.schema.json")
	if err != nil {
		t.Fatalf("compile %s: %v", path, err)
	}
	return s
}

// yamlToJSON turns YAML into the JSON value the validator takes.
func yamlToJSON(t *testing.T, y []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(y, &v); err != nil {
		t.Fatalf("parse YAML: %v", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("YAML to JSON: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestExportClab(t *testing.T) {
	ex, err := New(lab.Config{VMs: append(lab.DefaultVMs(3), lab.DefaultVMs6(1)...)})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "TestExportClab.golden"), ex.YAML)
	wantFiles := []string{"lab-files/build.sh", "lab-files/ctl.sh", "lab-files/edge/daemons", "lab-files/edge/frr.conf",
		"lab-files/edge/vtysh.conf", "lab-files/site.sh", "lab-files/vms.txt"}
	if got := ex.FileNames(); !slices.Equal(got, wantFiles) {
		t.Errorf("files %v, want %v", got, wantFiles)
	}
	if want := []string{"lab-files/cutover"}; !slices.Equal(ex.Built, want) {
		t.Errorf("built %v, want %v", ex.Built, want)
	}
	// The edge runs exactly the native lab's configuration.
	top, err := lab.NewTopology(lab.Config{VMs: append(lab.DefaultVMs(3), lab.DefaultVMs6(1)...)})
	if err != nil {
		t.Fatal(err)
	}
	want, err := top.FRRConf()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(ex.Files["lab-files/edge/frr.conf"]); got != want {
		t.Errorf("exported frr.conf differs from the rendered one")
	}
	if got := string(ex.Files["lab-files/vms.txt"]); got != "10.64.0.10/32\n10.64.0.11/32\n10.64.0.12/32\nfd00:64::10/128\n" {
		t.Errorf("vms.txt = %q", got)
	}
	checkDeployable(t, ex)

	schema := clabSchema(t)
	if err := schema.Validate(yamlToJSON(t, ex.YAML)); err != nil {
		t.Errorf("export does not validate against containerlab's schema:\n%v", err)
	}
	// prefixItems is enforced: a malformed endpoint fails, as do other
	// breakages, so the check above is real.
	for _, tc := range []struct{ name, from, to string }{
		{"endpoint without interface", `["edge:ctl", "ctl:edge"]`, `["edge-ctl", "ctl:edge"]`},
		{"second endpoint malformed", `["edge:skm1", "skm1:edge"]`, `["edge:skm1", "skm1 edge"]`},
		{"unknown kind", "kind: linux", "kind: linuxx"},
		{"unknown node key", "network-mode: none", "network-modes: none"},
		{"unknown stage", "stage: create", "stage: created"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(string(ex.YAML), tc.from, tc.to, 1)
			if bad == string(ex.YAML) {
				t.Fatalf("%q not in the export", tc.from)
			}
			if err := schema.Validate(yamlToJSON(t, []byte(bad))); err == nil {
				t.Errorf("schema accepted %s", tc.to)
			}
		})
	}
	// Read as the draft-07 it declares, the schema ignores prefixItems and
	// accepts the malformed endpoint: this is why it is compiled as 2020-12.
	bad := strings.Replace(string(ex.YAML), `"edge:ctl"`, `"edge-ctl"`, 1)
	if err := compileClabSchema(t, jsonschema.Draft7).Validate(yamlToJSON(t, []byte(bad))); err != nil {
		t.Errorf("draft-07 reading rejected the malformed endpoint; the 2020-12 work-around may be obsolete: %v", err)
	}
}

// threeSites is a shape unlike the default: three sites of their own
// names and addresses, one named like the controller's node (the lab
// renames it), two edges of different ASes, the second reached over IPv6
// only and on another BGP port.
func threeSites() lab.Shape {
	a := netip.MustParseAddr
	return lab.Shape{
		ControllerAS: 64512,
		ControllerID: a("172.20.0.9"),
		Sites: []lab.SiteSpec{
			{Name: "nord", NextHop: lab.NextHop{V4: a("172.21.1.1"), V6: a("2001:db8:21:1::1")}},
			{Name: "ctl", NextHop: lab.NextHop{V4: a("172.21.2.1"), V6: a("2001:db8:21:2::1")}},
			{Name: "tromso", NextHop: lab.NextHop{V4: a("172.21.3.1")}},
		},
		Edges: []lab.EdgeSpec{
			{Addrs: []netip.Addr{a("172.20.0.1")}, AS: 64600},
			{Addrs: []netip.Addr{a("2001:db8:20::1")}, AS: 64601, Port: 1179},
		},
		Fallback: "nord",
	}
}

func threeSitesConfig() lab.Config {
	sh := threeSites()
	p := netip.MustParsePrefix
	return lab.Config{
		Name:     "three",
		Shape:    &sh,
		Covering: []netip.Prefix{p("10.90.0.0/16"), p("2001:db8:90::/48")},
		VMs:      []netip.Prefix{p("10.90.0.10/32"), p("10.90.0.11/32"), p("2001:db8:90::10/128")},
	}
}

// exported is an export read back: its nodes in order, and its links.
type exported struct {
	order []string
	nodes map[string]clabNode
	links [][]string
}

func readExport(t *testing.T, y []byte) exported {
	t.Helper()
	var doc struct {
		Topology struct {
			Nodes yaml.Node `yaml:"nodes"`
			Links []struct {
				Endpoints []string `yaml:"endpoints"`
			} `yaml:"links"`
		} `yaml:"topology"`
	}
	if err := yaml.Unmarshal(y, &doc); err != nil {
		t.Fatalf("parse export: %v", err)
	}
	ex := exported{nodes: map[string]clabNode{}}
	c := doc.Topology.Nodes.Content
	for i := 0; i+1 < len(c); i += 2 {
		var n clabNode
		if err := c[i+1].Decode(&n); err != nil {
			t.Fatalf("node %s: %v", c[i].Value, err)
		}
		ex.order = append(ex.order, c[i].Value)
		ex.nodes[c[i].Value] = n
	}
	for _, l := range doc.Topology.Links {
		ex.links = append(ex.links, l.Endpoints)
	}
	return ex
}

// checkDeployable checks what containerlab needs to deploy the export as
// it is: every bind names a file the export writes or one build.sh builds
// (containerlab refuses a missing bind source), and the scripts parse.
func checkDeployable(t *testing.T, ex Export) {
	t.Helper()
	build := string(ex.Files[ex.FilesDir+"/build.sh"])
	for _, b := range ex.Built {
		if !strings.Contains(build, "go build -o "+b+" ./cmd/cutover") || !strings.Contains(string(ex.YAML), "go build -o "+b+" ./cmd/cutover") {
			t.Errorf("%s is bound but neither build.sh nor the header says how to build it", b)
		}
		if _, ok := ex.Files[b]; ok {
			t.Errorf("%s is both written and built", b)
		}
	}
	for node, n := range readExport(t, ex.YAML).nodes {
		for _, b := range n.Binds {
			host := strings.SplitN(b, ":", 2)[0]
			if _, ok := ex.Files[host]; !ok && !slices.Contains(ex.Built, host) {
				t.Errorf("%s binds %s, which the export neither writes nor documents building", node, host)
			}
		}
	}
	for name, body := range ex.Files {
		if !strings.HasPrefix(name, ex.FilesDir+"/") {
			t.Errorf("file %s outside %s", name, ex.FilesDir)
		}
		if strings.HasSuffix(name, ".sh") {
			checkShell(t, name, body)
		}
	}
}

// checkShell checks the syntax of a shell script with sh -n.
func checkShell(t *testing.T, name string, body []byte) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Logf("no sh: %s not checked", name)
		return
	}
	cmd := exec.Command(sh, "-n")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: sh -n: %v\n%s", name, err, out)
	}
}

func TestExportClabShape(t *testing.T) {
	cfg := threeSitesConfig()
	ex, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "TestExportClabShape.golden"), ex.YAML)
	if err := clabSchema(t).Validate(yamlToJSON(t, ex.YAML)); err != nil {
		t.Errorf("export does not validate against containerlab's schema:\n%v", err)
	}
	checkDeployable(t, ex)
	topo, err := lab.NewTopology(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := readExport(t, ex.YAML)
	if want := []string{"edge", "edge2", "nord", "site2", "tromso", "hosp", "ctl"}; !slices.Equal(topo.Nodes(), want) {
		t.Fatalf("topology nodes %v, want %v (the lab changed; adapt the test)", topo.Nodes(), want)
	}
	if !slices.Equal(got.order, topo.Nodes()) {
		t.Errorf("nodes %v, want %v", got.order, topo.Nodes())
	}
	for _, lk := range topo.Links {
		if !slices.ContainsFunc(got.links, func(eps []string) bool { return slices.Equal(eps, []string{lk.A.String(), lk.B.String()}) }) {
			t.Errorf("link %s-%s missing", lk.A, lk.B)
		}
	}
	if len(got.links) != len(topo.Links) {
		t.Errorf("%d links, want %d", len(got.links), len(topo.Links))
	}
	for _, node := range topo.Nodes() {
		n := got.nodes[node]
		want := map[string]string{}
		for _, s := range topo.Sysctls(node) {
			want[s[0]] = s[1]
		}
		if !mapsEqual(n.Sysctls, want) {
			t.Errorf("%s sysctls %v, want %v", node, n.Sysctls, want)
		}
	}
	if l := got.nodes["site2"].Labels["cutover.site"]; l != "ctl" {
		t.Errorf("site ctl runs as node site2 labelled %q", l)
	}
	t.Run("bridges", func(t *testing.T) { checkBridges(t, topo, got) })
	t.Run("edges", func(t *testing.T) { checkEdges(t, topo, ex, got) })
	t.Run("controller", func(t *testing.T) { checkController(t, topo, ex, got) })
	for _, s := range topo.SiteNodes() {
		if want := "sh /cutover/site.sh " + s; !slices.Contains(got.nodes[s].Exec, want) {
			t.Errorf("%s does not start its responder (%q): %q", s, want, got.nodes[s].Exec)
		}
	}
}

// checkBridges checks that every site of two edges has its gateway on a
// bridge "edges" with every edge's link enslaved, in an order ip accepts.
func checkBridges(t *testing.T, topo lab.Topology, got exported) {
	if len(topo.Bridges) != len(topo.Sites) {
		t.Fatalf("%d bridges for %d sites of two edges", len(topo.Bridges), len(topo.Sites))
	}
	for _, br := range topo.Bridges {
		ex := got.nodes[br.Node].Exec
		add := slices.Index(ex, "ip link add edges type bridge")
		if add < 0 {
			t.Errorf("%s: no bridge: %q", br.Node, ex)
			continue
		}
		for _, e := range topo.EdgeNodes() {
			if i := slices.Index(ex, "ip link set "+e+" master edges"); i < add {
				t.Errorf("%s: %s not enslaved after the bridge exists: %q", br.Node, e, ex)
			}
			if slices.ContainsFunc(ex, func(l string) bool {
				return strings.HasPrefix(l, "ip ") && strings.Contains(l, "addr add") && strings.Contains(l+" ", " dev "+e+" ")
			}) {
				t.Errorf("%s: enslaved %s has an address of its own: %q", br.Node, e, ex)
			}
		}
		for _, a := range br.Addrs {
			if !slices.ContainsFunc(ex, func(l string) bool { return strings.Contains(l, "addr add "+a.String()+" dev edges") }) {
				t.Errorf("%s: gateway %s not on the bridge: %q", br.Node, a, ex)
			}
		}
		if !slices.Contains(ex, "ip link set edges up") {
			t.Errorf("%s: bridge not up", br.Node)
		}
	}
}

// checkEdges checks that every edge runs FRR from its own configuration.
func checkEdges(t *testing.T, topo lab.Topology, ex Export, got exported) {
	for _, e := range topo.Edges {
		conf := ex.FilesDir + "/" + e.Node + "/frr.conf"
		want, err := topo.FRRConfOf(e.Node)
		if err != nil {
			t.Fatal(err)
		}
		if string(ex.Files[conf]) != want {
			t.Errorf("%s: %s is not the edge's rendered configuration", e.Node, conf)
		}
		binds := got.nodes[e.Node].Binds
		for _, b := range []string{conf + ":/etc/frr/frr.conf", ex.FilesDir + "/" + e.Node + "/daemons:/etc/frr/daemons:ro",
			ex.FilesDir + "/" + e.Node + "/vtysh.conf:/etc/frr/vtysh.conf:ro"} {
			if !slices.Contains(binds, b) {
				t.Errorf("%s: bind %s missing: %q", e.Node, b, binds)
			}
		}
		if got.nodes[e.Node].Cmd != "" {
			t.Errorf("%s: cmd %q replaces the image's FRR start", e.Node, got.nodes[e.Node].Cmd)
		}
	}
	if d := string(ex.Files[ex.FilesDir+"/edge2/daemons"]); !strings.Contains(d, `bgpd_options="   -A 127.0.0.1 -p 1179"`) {
		t.Errorf("edge2's bgpd does not listen on its port 1179:\n%s", d)
	}
	if d := string(ex.Files[ex.FilesDir+"/edge/daemons"]); strings.Contains(d, " -p ") {
		t.Errorf("edge's bgpd on another port than 179:\n%s", d)
	}
}

// checkController checks that ctl holds the controller's session
// addresses and runs the daemon with the first edge as its dataplane.
func checkController(t *testing.T, topo lab.Topology, ex Export, got exported) {
	ctl := got.nodes[lab.NodeCtl]
	for _, e := range topo.Edges {
		for _, s := range e.Sessions {
			if !slices.ContainsFunc(ctl.Exec, func(l string) bool {
				return strings.Contains(l, "addr add "+s.Ctl.String()+"/") && strings.Contains(l, " dev "+e.Node)
			}) {
				t.Errorf("ctl lacks %s, its session address toward %s: %q", s.Ctl, e.Node, ctl.Exec)
			}
		}
	}
	if ctl.PidMode != "container:edge" || ctl.Stages == nil ||
		!slices.Equal(ctl.Stages.Create.WaitFor, []clabWaitFor{{Node: "edge", Stage: "create"}}) {
		t.Errorf("ctl does not join the running edge's PID namespace: pid-mode %q, stages %+v", ctl.PidMode, ctl.Stages)
	}
	if last := ctl.Exec[len(ctl.Exec)-1]; last != "sh /cutover/ctl.sh" {
		t.Errorf("ctl's last exec %q, want the daemon's start after the addresses and routes", last)
	}
	script := string(ex.Files[ex.FilesDir+"/ctl.sh"])
	for _, want := range []string{"ip netns attach edge 1\n", "cutover serve --state-dir /var/lib/cutover --socket " + serve.DefaultSocket + " --dataplane-netns edge "} {
		if !strings.Contains(script, want) {
			t.Errorf("ctl.sh lacks %q:\n%s", want, script)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestExportClabRunbook exports the lab of a runbook as `lab rehearse`
// builds it: the responders listen on every port the inventory probes.
func TestExportClabRunbook(t *testing.T) {
	pl, _, err := plan.Load(filepath.Join("..", "rehearse", "testdata", "three-sites", "runbook.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := lab.ConfigFor("three-sites", "", lab.Book{Runbook: pl.Runbook, Inventory: pl.Inventory})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := clabSchema(t).Validate(yamlToJSON(t, ex.YAML)); err != nil {
		t.Errorf("export does not validate against containerlab's schema:\n%v", err)
	}
	checkDeployable(t, ex)
	got := readExport(t, ex.YAML)
	want := "sh /cutover/site.sh nord"
	for _, p := range cfg.HTTPPorts {
		want += " :" + itoa(p)
	}
	if !slices.Contains(got.nodes["nord"].Exec, want) {
		t.Errorf("nord's responder: want %q in %q", want, got.nodes["nord"].Exec)
	}
	if len(cfg.TLSPorts) > 0 && !strings.Contains(string(ex.YAML), "# Not in this export: HTTPS responders") {
		t.Errorf("the header does not say that HTTPS ports %v are not served", cfg.TLSPorts)
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

func TestExportClabErrors(t *testing.T) {
	withSite := func(name string) lab.Config {
		cfg := threeSitesConfig()
		sh := *cfg.Shape
		sh.Sites = slices.Clone(sh.Sites)
		sh.Sites[2].Name = name
		cfg.Shape = &sh
		return cfg
	}
	// A site named like a special endpoint of containerlab gets a node
	// name of the lab's own, and exports.
	for _, name := range []string{"host", "macvlan"} {
		ex, err := New(withSite(name))
		if err != nil || strings.Contains(string(ex.YAML), `"`+name+`:`) {
			t.Errorf("site %s: %v; its node name appears in a link", name, err)
		}
	}
	for _, tc := range []struct {
		name string
		cfg  lab.Config
		want string
	}{
		{"bad lab name", lab.Config{Name: "Lab One"},
			`lab name "Lab One": want 1-31 characters of a-z, 0-9, '-' and '_', starting with a letter or digit`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error %v\nwant       %s", err, tc.want)
			}
		})
	}
}

// TestDefaultSocket keeps ctl.sh's socket the daemon's default, so that
// the CLI in ctl finds the daemon without --socket.
func TestDefaultSocket(t *testing.T) {
	if defaultSocket != serve.DefaultSocket {
		t.Errorf("defaultSocket %s, cutover serve's default %s", defaultSocket, serve.DefaultSocket)
	}
}
