// Command gen writes a plausible, deterministic VM inventory for the
// example runbooks and for tests: the same flags give the same bytes.
//
//	go run ./runbooks/gen -vms 2000 -seed 1 > runbooks/helse-nord/inventory.csv
//
// Names are TENANT-ROLE-NNN, tenants are drawn by weight, tiers and probes
// by share, addresses count up from -start (a VM with two addresses takes
// two in a row), and -v6 VMs also get an address in -v6prefix. -preset
// NAME sets the flags of one of the checked-in examples (helse-nord,
// drain-upgrade, dr-drill); flags given after it override. `go generate
// ./runbooks/...` rewrites all three; a test fails when they are stale.
package main

//go:generate sh -c "go run . -preset helse-nord > ../helse-nord/inventory.csv"
//go:generate sh -c "go run . -preset drain-upgrade > ../drain-upgrade/inventory.yaml"
//go:generate sh -c "go run . -preset dr-drill > ../dr-drill/inventory.json"

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(2)
	}
}

type vm struct {
	Name      string   `json:"name" yaml:"name"`
	Address   string   `json:"address,omitempty" yaml:"address,omitempty"`
	Addresses []string `json:"addresses,omitempty" yaml:"addresses,omitempty,flow"`
	Tenant    string   `json:"tenant" yaml:"tenant"`
	Tier      int      `json:"tier" yaml:"tier"`
	Probe     string   `json:"probe" yaml:"probe"`
}

// presets are the flags of the checked-in example inventories.
var presets = map[string][]string{
	"helse-nord": {"-vms", "2000", "-seed", "1"},
	"drain-upgrade": {"-vms", "500", "-seed", "2", "-format", "yaml",
		"-tenants", "ehelse=5,labsystem=3,radiologi=3,apotek=1,drift=4",
		"-roles", "svc,api,web,worker,cache,queue", "-tiers", "10,40,50",
		"-probes", "http:8080/healthz=60,tcp:443=25,https:443/status=10,=5",
		"-start", "10.66.0.10", "-v6prefix", "fd00:66::/48", "-v6", "25", "-multi", "10"},
	"dr-drill": {"-vms", "800", "-seed", "3", "-format", "json",
		"-tenants", "alta=3,andoy=1,balsfjord=1,bardu=1,bodo=4,bronnoy=1,fauske=1,hadsel=1,hamaroy=1,hammerfest=2," +
			"harstad=3,karasjok=1,karlsoy=1,kautokeino=1,kvanangen=1,lebesby=1,lodingen=1,lyngen=1,malselv=1,meloy=1," +
			"narvik=3,nordkapp=1,nordreisa=1,oksnes=1,porsanger=1,rana=3,saltdal=1,senja=2,skjervoy=1,sortland=1," +
			"steigen=1,sor-varanger=2,tana=1,tromso=5,vadso=1,vagan=2,vardo=1,vefsn=2,vestvagoy=2,alstahaug=1",
		"-roles", "sak,web,epost,skole,helse,gis,fil,db", "-tiers", "20,40,40",
		"-probes", "http:80/=50,https:443/=20,tcp:445=15,icmp=10,=5",
		"-start", "10.70.0.10", "-v6prefix", "fd00:70::/48", "-v6", "40", "-multi", "8"},
}

func run(args []string, out io.Writer) error {
	if len(args) >= 2 && (args[0] == "-preset" || args[0] == "--preset") {
		p, ok := presets[args[1]]
		if !ok {
			return fmt.Errorf("-preset %q: want helse-nord, drain-upgrade or dr-drill", args[1])
		}
		args = append(slices.Clone(p), args[2:]...)
	}
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.String("preset", "", "flags of a checked-in example: helse-nord, drain-upgrade or dr-drill (must come first)")
	n := fs.Int("vms", 2000, "number of VMs")
	seed := fs.Uint64("seed", 1, "random seed")
	tenants := fs.String("tenants", "unn=40,nlsh=20,hsyk=12,finnmark=10,hnikt=14,sykehusapotek=4", "tenants as NAME=WEIGHT,...")
	roles := fs.String("roles", "dips,pacs,ris,lab,web,app,db,citrix,print,file,api,mq", "roles used in VM names")
	tiers := fs.String("tiers", "15,35,50", "percent of tier 1, 2 and 3")
	probes := fs.String("probes", "http:80/=80,tcp:80=16,=4", "probes as PROBE=WEIGHT,... (empty PROBE: none)")
	start := fs.String("start", "10.64.0.10", "first IPv4 address")
	v6prefix := fs.String("v6prefix", "fd00:64::/48", "range of the IPv6 addresses")
	v6 := fs.Int("v6", 20, "number of VMs that also get an IPv6 address")
	multi := fs.Int("multi", 4, "number of VMs with a second IPv4 address")
	format := fs.String("format", "csv", "output format: csv, yaml or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tw, err := weights(*tenants)
	if err != nil {
		return fmt.Errorf("-tenants: %w", err)
	}
	pw, err := weights(*probes)
	if err != nil {
		return fmt.Errorf("-probes: %w", err)
	}
	tp := strings.Split(*tiers, ",")
	if len(tp) != 3 {
		return fmt.Errorf("-tiers %q: want three percentages", *tiers)
	}
	var tierW []weighted
	total := 0
	for i, s := range tp {
		w, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || w < 0 {
			return fmt.Errorf("-tiers %q: want three whole percentages", *tiers)
		}
		tierW = append(tierW, weighted{strconv.Itoa(i + 1), w})
		total += w
	}
	if total == 0 {
		return fmt.Errorf("-tiers %q: the percentages add up to 0", *tiers)
	}
	addr, err := netip.ParseAddr(*start)
	if err != nil || !addr.Is4() {
		return fmt.Errorf("-start %q: want an IPv4 address", *start)
	}
	v6p, err := netip.ParsePrefix(*v6prefix)
	if err != nil || !v6p.Addr().Is6() {
		return fmt.Errorf("-v6prefix %q: want an IPv6 prefix", *v6prefix)
	}
	if *n < 1 || *v6 > *n || *multi > *n || *v6 < 0 || *multi < 0 {
		return fmt.Errorf("want -vms ≥ 1 and 0 ≤ -v6, -multi ≤ -vms")
	}
	roleList := strings.Split(*roles, ",")

	rng := rand.New(rand.NewPCG(*seed, 0x6375746f766572)) // "cutover"
	perm := rng.Perm(*n)
	withV6 := map[int]bool{}
	withTwo := map[int]bool{}
	for _, i := range perm[:*v6] {
		withV6[i] = true
	}
	for _, i := range perm[len(perm)-*multi:] {
		withTwo[i] = true
	}
	counter := map[string]int{}
	v6next := v6p.Addr().Next()
	vms := make([]vm, *n)
	for i := range vms {
		tenant := pick(rng, tw)
		role := roleList[rng.IntN(len(roleList))]
		key := tenant + "-" + role
		counter[key]++
		tier, _ := strconv.Atoi(pick(rng, tierW))
		v := vm{Name: fmt.Sprintf("%s-%03d", key, counter[key]), Tenant: tenant, Tier: tier, Probe: pick(rng, pw)}
		v.Addresses = append(v.Addresses, addr.String())
		addr = addr.Next()
		if withTwo[i] {
			v.Addresses = append(v.Addresses, addr.String())
			addr = addr.Next()
		}
		if withV6[i] {
			v.Addresses = append(v.Addresses, v6next.String())
			v6next = v6next.Next()
		}
		vms[i] = v
	}
	slices.SortFunc(vms, func(a, b vm) int { return strings.Compare(a.Name, b.Name) })
	switch *format {
	case "csv":
		var b strings.Builder
		b.WriteString("name,address,tenant,tier,probe\n")
		for _, v := range vms {
			for _, a := range v.Addresses {
				fmt.Fprintf(&b, "%s,%s,%s,%d,%s\n", v.Name, a, v.Tenant, v.Tier, v.Probe)
			}
		}
		_, err = io.WriteString(out, b.String())
		return err
	case "yaml", "json":
		for i := range vms {
			if len(vms[i].Addresses) == 1 {
				vms[i].Address, vms[i].Addresses = vms[i].Addresses[0], nil
			}
		}
		if *format == "json" {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			return enc.Encode(vms)
		}
		enc := yaml.NewEncoder(out)
		enc.SetIndent(2)
		if err := enc.Encode(vms); err != nil {
			return err
		}
		return enc.Close()
	}
	return fmt.Errorf("-format %q: want csv, yaml or json", *format)
}

type weighted struct {
	name string
	w    int
}

func weights(s string) ([]weighted, error) {
	var out []weighted
	total := 0
	for _, part := range strings.Split(s, ",") {
		name, ws, ok := strings.Cut(part, "=")
		w, err := strconv.Atoi(ws)
		if !ok || err != nil || w < 0 {
			return nil, fmt.Errorf("%q: want NAME=WEIGHT", part)
		}
		out = append(out, weighted{strings.TrimSpace(name), w})
		total += w
	}
	if total == 0 {
		return nil, fmt.Errorf("%q: the weights add up to 0", s)
	}
	return out, nil
}

func pick(rng *rand.Rand, ws []weighted) string {
	total := 0
	for _, w := range ws {
		total += w.w
	}
	r := rng.IntN(total)
	for _, w := range ws {
		if r < w.w {
			return w.name
		}
		r -= w.w
	}
	return ws[len(ws)-1].name
}
