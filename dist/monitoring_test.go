package dist

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/cutover/daemon"
	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/health"
)

const (
	dashboardFile  = "grafana/cutover.json"
	alertsFile     = "prometheus/cutover-alerts.yml"
	alertTestsFile = "prometheus/cutover-alerts_test.yml"
)

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"instance", "job"}

// promtool returns the path of promtool (on PATH, or where scripts/setup
// puts it: bin/ at the repository's root), or skips the test.
func promtool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	if p, err := filepath.Abs("../bin/promtool"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("promtool is not installed: scripts/setup --packages puts it into bin/ (from Debian's prometheus package) to check the rules and metrics here")
	return ""
}

// TestAlertRulesPromtool checks the rules and runs their unit tests.
func TestAlertRulesPromtool(t *testing.T) {
	p := promtool(t)
	for _, args := range [][]string{{"check", "rules", alertsFile}, {"test", "rules", alertTestsFile}} {
		out, err := exec.Command(p, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// alertRules is the part of a Prometheus rule file the tests read.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// alertTests is the part of a promtool test file the tests read.
type alertTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		InputSeries []struct {
			Series string `yaml:"series"`
		} `yaml:"input_series"`
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestAlertRules: every rule has a severity and annotations that say what
// to run, and its unit tests see it both fire and stay silent. promtool
// checks the rest (TestAlertRulesPromtool).
func TestAlertRules(t *testing.T) {
	var rules alertRules
	readYAML(t, alertsFile, &rules)
	var tests alertTests
	readYAML(t, alertTestsFile, &tests)
	if want := []string{filepath.Base(alertsFile)}; !slices.Equal(tests.RuleFiles, want) {
		t.Errorf("%s: rule_files %q, want %q", alertTestsFile, tests.RuleFiles, want)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	names := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without an alert name (recording rules belong elsewhere)", g.Name)
				continue
			}
			if names[r.Alert] {
				t.Errorf("%s: defined twice", r.Alert)
			}
			names[r.Alert] = true
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s: no summary", r.Alert)
			}
			if d := r.Annotations["description"]; !strings.Contains(d, "`cutover status`") {
				t.Errorf("%s: the description does not say to run `cutover status`: %q", r.Alert, d)
			}
			if !fires[r.Alert] || !silent[r.Alert] {
				t.Errorf("%s: %s has no test in which it fires (%v) and one in which it does not (%v)", r.Alert, alertTestsFile, fires[r.Alert], silent[r.Alert])
			}
		}
	}
	for n := range fires {
		if !names[n] {
			t.Errorf("%s tests %s, which is not a rule", alertTestsFile, n)
		}
	}
}

// grafanaBuiltins are the variables Grafana defines itself.
var grafanaBuiltins = []string{"__interval", "__interval_ms", "__rate_interval", "__range", "__range_s", "__range_ms", "__dashboard", "__from", "__to"}

type gridPos struct{ X, Y, W, H int }

type dashPanel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	GridPos    *gridPos       `json:"gridPos"`
	Datasource map[string]any `json:"datasource"`
	Targets    []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource map[string]any `json:"datasource"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"` // a collapsed row's
}

type dashboard struct {
	ID            any         `json:"id"`
	UID           string      `json:"uid"`
	Title         string      `json:"title"`
	SchemaVersion int         `json:"schemaVersion"`
	Panels        []dashPanel `json:"panels"`
	Time          *struct {
		From, To string
	} `json:"time"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels returns the panels with those of collapsed rows.
func (d dashboard) allPanels() []dashPanel {
	var out []dashPanel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// exprs returns every target's expression by where it is.
func (d dashboard) exprs() map[string]string {
	out := map[string]string{}
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			out[fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID)] = tg.Expr
		}
	}
	return out
}

var grafanaVar = regexp.MustCompile(`\$\{?(\w+)`)

// TestDashboard checks the dashboard against Grafana's JSON model as far
// as it can without Grafana: the fields a provisioned dashboard needs, a
// Prometheus data source chosen by variable, unique panel ids, panels that
// fit the 24-column grid without overlapping, and targets that name their
// data source and use only defined variables.
func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || len(d.UID) > 40 || d.Title == "" || d.Time == nil {
		t.Errorf("uid %q (1-40 characters), title %q and time are required", d.UID, d.Title)
	}
	if d.ID != nil {
		t.Errorf("id %v: a dashboard to provision or import has a null id", d.ID)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want 36 or later (data sources by uid)", d.SchemaVersion)
	}
	vars := slices.Clone(grafanaBuiltins)
	ds := false
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
		if v.Type == "datasource" && v.Query == "prometheus" && v.Name == "datasource" {
			ds = true
		}
	}
	if !ds {
		t.Error(`no templating variable "datasource" of type datasource for prometheus`)
	}
	wantDS := map[string]any{"type": "prometheus", "uid": "${datasource}"}
	ids := map[int]string{}
	var boxes []dashPanel
	for _, p := range d.allPanels() {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if p.ID <= 0 {
			t.Errorf("%s: id must be positive", where)
		}
		if other, dup := ids[p.ID]; dup {
			t.Errorf("%s: id used by %q too", where, other)
		}
		ids[p.ID] = p.Title
		if p.Type == "" || p.Title == "" {
			t.Errorf("%s: type and title are required", where)
		}
		g := p.GridPos
		switch {
		case g == nil:
			t.Errorf("%s: no gridPos", where)
			continue
		case g.W < 1 || g.H < 1 || g.X < 0 || g.Y < 0 || g.X+g.W > 24:
			t.Errorf("%s: gridPos %+v outside the 24-column grid", where, *g)
		}
		for _, o := range boxes {
			h := o.GridPos
			if g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
				t.Errorf("%s: gridPos %+v overlaps panel %d %q at %+v", where, *g, o.ID, o.Title, *h)
			}
		}
		boxes = append(boxes, p)
		if p.Type == "row" {
			continue
		}
		if !maps.Equal(p.Datasource, wantDS) {
			t.Errorf("%s: datasource %v, want %v", where, p.Datasource, wantDS)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no targets", where)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("%s: refId %q empty or repeated", where, tg.RefID)
			}
			refs[tg.RefID] = true
			if !maps.Equal(tg.Datasource, wantDS) {
				t.Errorf("%s target %s: datasource %v, want %v", where, tg.RefID, tg.Datasource, wantDS)
			}
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s target %s: no expr", where, tg.RefID)
			}
			for _, m := range grafanaVar.FindAllStringSubmatch(tg.Expr, -1) {
				if !slices.Contains(vars, m[1]) {
					t.Errorf("%s target %s: variable $%s is not defined", where, tg.RefID, m[1])
				}
			}
		}
	}
}

// metricFamily is what the daemon exports under one name.
type metricFamily struct {
	histogram bool
	labels    map[string]map[string]bool // label name → values seen
}

// exported runs a daemon on fakes through a run that stops at a go/no-go
// point, fails a batch's gate, rolls it back and ends, and gathers its
// registry (the one cutover serve builds: engine.NewMetrics and the
// daemon's collector) along the way. It returns every metric seen, with
// its labels, and the expositions.
func exported(t *testing.T) (map[string]*metricFamily, [][]byte) {
	t.Helper()
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	fb := &daemon.FakeBackends{
		BGP: bgp.NewFake(bgp.Limits{Allowed: []netip.Prefix{netip.MustParsePrefix("10.64.0.0/14")}, MaxPrefixes: 100}),
		Probe: &health.Fake{Func: func(tg health.Target, n int) health.Result {
			if tg.Name == "vm-02" && n > 0 { // healthy at the baseline, then down
				return health.Result{Err: "tcp 80: connection refused"}
			}
			return health.Result{OK: true}
		}},
	}
	d, err := daemon.Open(ctx, daemon.Config{StateDir: t.TempDir(), Backends: fb, Log: zerolog.Nop(), Metrics: engine.NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := d.Close(false); err != nil {
			t.Errorf("close the daemon: %v", err)
		}
	}()
	reg.MustRegister(d.Collector())

	seen := map[string]*metricFamily{}
	var expositions [][]byte
	gather := func() {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatalf("gather: %v", err)
		}
		var b bytes.Buffer
		enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				t.Fatal(err)
			}
			f := seen[mf.GetName()]
			if f == nil {
				f = &metricFamily{histogram: mf.GetType().String() == "HISTOGRAM", labels: map[string]map[string]bool{}}
				seen[mf.GetName()] = f
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if f.labels[l.GetName()] == nil {
						f.labels[l.GetName()] = map[string]bool{}
					}
					f.labels[l.GetName()][l.GetValue()] = true
				}
			}
		}
		expositions = append(expositions, b.Bytes())
	}
	wait := func(what string, ok func(engine.RunState) bool) {
		deadline := time.Now().Add(30 * time.Second)
		for st := d.Status(0).State; !ok(st); st = d.Status(0).State {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: phase %s pause %q", what, st.Phase, st.Pause)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	gather() // idle, no speaker
	err = d.Run(ctx, client.RunRequest{Operator: "test",
		Runbook:   client.File{Name: "monitoring.yaml", Content: []byte(testRunbook)},
		Inventory: client.File{Name: "inventory.csv", Content: []byte(testInventory)}})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	wait("the go/no-go point", func(s engine.RunState) bool { return s.Confirm == "before-start" })
	gather()
	if err := d.Confirm("before-start", true, "test"); err != nil {
		t.Fatal(err)
	}
	wait("the end of the run", func(s engine.RunState) bool { return s.Phase == engine.PhaseDone || s.Phase == engine.PhaseAborted })
	gather()
	for _, want := range []string{"cutover_rollbacks_total", "cutover_bgp_peer_prefixes_accepted", "cutover_run_waiting", "cutover_gate_rounds_total"} {
		if seen[want] == nil {
			t.Fatalf("the run did not show %s: the scenario no longer covers every metric", want)
		}
	}
	if !seen["cutover_gate_verdicts_total"].labels["result"]["fail"] {
		t.Fatal("no gate failed: the scenario no longer covers every metric")
	}
	return seen, expositions
}

const testRunbook = `version: 1
name: monitoring-test
inventory: inventory.csv
tenants: [alpha]
sites:
  skm1: {next_hop: {ipv4: 10.255.1.2}}
  skm2: {next_hop: {ipv4: 10.255.2.2}}
move: {from: skm1, to: skm2}
bgp:
  local_as: 65100
  router_id: 10.255.0.2
  peers:
    - {address: 10.255.0.1, as: 65000, observe: true}
allowed_prefixes: [10.64.0.0/14]
max_prefixes: 100
batching: {canary: 1, size: 2}
gates:
  - {kind: bgp, timeout: 10s}
  - {kind: probe, rise: 2, fall: 1, interval: 100ms, timeout: 100ms, within: 30s}
failure_policy: rollback-batch
hold: 0s
confirm: [before-start]
`

const testInventory = `name,address,tenant,tier,probe
vm-00,10.64.0.10,alpha,3,tcp:80
vm-01,10.64.0.11,alpha,2,tcp:80
vm-02,10.64.0.12,alpha,3,tcp:80
vm-03,10.64.0.13,alpha,2,tcp:80
vm-04,10.64.0.14,alpha,3,tcp:80
`

// TestDaemonMetrics: the exposition passes promtool check metrics, and
// the dashboard and the alert rules use only metrics, labels and label
// values the daemon exports; the dashboard shows every metric.
func TestDaemonMetrics(t *testing.T) {
	seen, expositions := exported(t)

	t.Run("promtool check metrics", func(t *testing.T) {
		p := promtool(t)
		for _, b := range expositions {
			cmd := exec.Command(p, "check", "metrics")
			cmd.Stdin = bytes.NewReader(b)
			if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
				t.Errorf("promtool check metrics: %v\n%s\non\n%s", err, out, b)
			}
		}
	})

	t.Run("dashboard", func(t *testing.T) {
		used := map[string]bool{}
		for where, expr := range readDashboard(t).exprs() {
			for _, name := range checkExpr(t, where, expr, seen) {
				used[name] = true
			}
		}
		for name := range seen {
			if strings.HasPrefix(name, "cutover_") && !used[name] {
				t.Errorf("%s: no panel shows %s", dashboardFile, name)
			}
		}
	})

	t.Run("alert rules", func(t *testing.T) {
		var rules alertRules
		readYAML(t, alertsFile, &rules)
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				checkExpr(t, r.Alert, r.Expr, seen)
			}
		}
		// The tests' series must look like the daemon's: its metrics,
		// with exactly their labels.
		var tests alertTests
		readYAML(t, alertTestsFile, &tests)
		for _, tc := range tests.Tests {
			for _, in := range tc.InputSeries {
				name, labels := parseSeries(in.Series)
				f := seen[name]
				if f == nil {
					t.Errorf("%s: series %s: the daemon exports no %s", alertTestsFile, in.Series, name)
					continue
				}
				want := slices.Sorted(maps.Keys(f.labels))
				got := slices.DeleteFunc(labels, func(l string) bool { return slices.Contains(targetLabels, l) })
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Errorf("%s: series %s: labels %q, the daemon's %s has %q", alertTestsFile, in.Series, got, name, want)
				}
			}
		}
	})
}

var (
	// selector is a metric name with its optional label matchers.
	selector = regexp.MustCompile(`\b(cutover_[a-zA-Z0-9_:]*)\s*(\{[^}]*\})?`)
	matcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
	// grouping is a label list of by, without, on, ignoring, group_left
	// or group_right.
	grouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
)

// checkExpr checks that expr uses only metrics the daemon exports (a
// histogram's _bucket, _sum and _count included), with their labels, and
// label values it has shown for an equality matcher; it returns the
// metrics used. Without a PromQL parser in the module it reads selectors
// and label lists with regular expressions, which the expressions here
// keep simple enough for.
func checkExpr(t *testing.T, where, expr string, seen map[string]*metricFamily) []string {
	t.Helper()
	var used []string
	labels := slices.Clone(targetLabels)
	for _, m := range selector.FindAllStringSubmatch(expr, -1) {
		name := m[1]
		f, ok := seen[name]
		if !ok {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				base, cut := strings.CutSuffix(name, suffix)
				if hf := seen[base]; cut && hf != nil && hf.histogram {
					name, f, ok = base, hf, true
					if suffix == "_bucket" {
						labels = append(labels, "le")
					}
				}
			}
		}
		if !ok {
			t.Errorf("%s: %s is not a metric the daemon exports", where, m[1])
			continue
		}
		used = append(used, name)
		labels = slices.AppendSeq(labels, maps.Keys(f.labels))
		for _, mm := range matcher.FindAllStringSubmatch(m[2], -1) {
			label, op, value := mm[1], mm[2], mm[3]
			switch {
			case slices.Contains(targetLabels, label):
			case f.labels[label] == nil:
				t.Errorf("%s: %s has no label %s", where, name, label)
			case op == "=" && !strings.Contains(value, "$") && !f.labels[label][value]:
				t.Errorf("%s: %s{%s=%q}: the daemon showed only %q", where, name, label, value, slices.Sorted(maps.Keys(f.labels[label])))
			}
		}
	}
	for _, g := range grouping.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(g[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(labels, l) {
				t.Errorf("%s: groups by %s, a label of none of its metrics", where, l)
			}
		}
	}
	return used
}

// parseSeries splits a series of a promtool test, `name{a="x",b="y"}`,
// into its name and label names.
func parseSeries(s string) (string, []string) {
	name, rest, _ := strings.Cut(s, "{")
	var labels []string
	for _, m := range matcher.FindAllStringSubmatch(rest, -1) {
		labels = append(labels, m[1])
	}
	return strings.TrimSpace(name), labels
}
