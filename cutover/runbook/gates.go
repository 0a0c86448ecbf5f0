package runbook

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cutover/cutover/cutover/health"
	"github.com/cutover/cutover/internal/words"
)

// GateConfig is one gate of the runbook. Which fields apply depends on
// Kind; the others must be left out. The kinds are declared one per file
// (gate_*.go), each with its fields, defaults, checks, description and the
// live gate it builds.
type GateConfig struct {
	Kind string `yaml:"kind"`
	// bgp: how long the observed peers may take to hold the batch's routes.
	// probe: the timeout of one probe. prometheus: of one query.
	Timeout time.Duration `yaml:"timeout"`
	// probe: share of the batch's VMs that were healthy at the baseline and
	// must be healthy now (default 100%).
	MinHealthy Ratio `yaml:"min_healthy"`
	// probe: most regressed VMs allowed (default 0; -1: no limit).
	MaxFailures int `yaml:"max_failures"`
	// probe: consecutive rounds that must pass (Rise) or fail (Fall).
	Rise int `yaml:"rise"`
	Fall int `yaml:"fall"`
	// probe, prometheus: time between rounds.
	Interval time.Duration `yaml:"interval"`
	// probe: probes in flight at once.
	Concurrency int `yaml:"concurrency"`
	// probe, prometheus: the gate fails when it has not passed within this.
	Within time.Duration `yaml:"within"`
	// prometheus: server, instant query, and the comparison the value must meet.
	URL   string  `yaml:"url"`
	Query string  `yaml:"query"`
	Op    string  `yaml:"op"`
	Value float64 `yaml:"value"`
}

// gateKind is everything the runbook knows of one kind of gate. A new kind
// is a new gate_<kind>.go that calls registerGate from init, plus its row
// in runbooks/README.md.
type gateKind struct {
	// fields are the yaml keys the kind takes besides kind.
	fields []string
	// many allows more than one gate of the kind in a runbook.
	many bool
	// defaults are the values of the fields left out.
	defaults map[string]any
	// check reports the gate's mistakes; at is "gates[i]".
	check func(rb *Runbook, g GateConfig, at string, bad badFunc)
	// describe says what the gate asks, in one line.
	describe func(g GateConfig) string
	// live builds the gate that judges a batch after convergence; nil for
	// a kind that is not a health gate (bgp: the convergence wait).
	live func(g GateConfig, p health.Prober) health.Gate
	// least is the shortest time a batch can take to pass the gate, for
	// the dry run's timeline.
	least func(g GateConfig) time.Duration
}

var gateKinds = map[string]gateKind{}

// registerGate declares a kind of gate; it panics on a mistake in the
// declaration, which the package's tests find at once.
func registerGate(name string, k gateKind) {
	if _, dup := gateKinds[name]; dup {
		panic("runbook: gate kind " + name + " declared twice")
	}
	for f := range k.defaults {
		if !slices.Contains(k.fields, f) {
			panic("runbook: gate kind " + name + ": default for a field it does not take: " + f)
		}
	}
	for _, f := range k.fields {
		if _, ok := gateFieldIndex[f]; !ok || f == "kind" {
			panic("runbook: gate kind " + name + ": no GateConfig field " + f)
		}
	}
	gateKinds[name] = k
}

// GateKinds returns the names of the kinds of gate, sorted.
func GateKinds() []string {
	names := make([]string, 0, len(gateKinds))
	for n := range gateKinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// gateFieldIndex maps a gate's yaml key to its struct field.
var gateFieldIndex = func() map[string][]int {
	m := map[string][]int{}
	t := reflect.TypeFor[GateConfig]()
	for i := range t.NumField() {
		m[t.Field(i).Tag.Get("yaml")] = []int{i}
	}
	return m
}()

// defaults fills the fields of g's kind that the runbook left out; at is
// "gates[i]." and has reports whether the runbook wrote a path.
func (g *GateConfig) defaults(at string, has func(string) bool) {
	k, ok := gateKinds[g.Kind]
	if !ok {
		return
	}
	for field, v := range k.defaults {
		if !has(at + field) {
			reflect.ValueOf(g).Elem().FieldByIndex(gateFieldIndex[field]).Set(reflect.ValueOf(v))
		}
	}
}

// checkGates reports unknown kinds, fields of another kind, duplicates and
// each kind's own mistakes.
func (rb *Runbook) checkGates(bad badFunc) {
	kinds := map[string]int{}
	list := words.OrList(GateKinds())
	for i, g := range rb.Gates {
		at := fmt.Sprintf("gates[%d]", i)
		k, ok := gateKinds[g.Kind]
		switch {
		case g.Kind == "":
			bad(at+".kind", "", "required: %s", list)
			continue
		case !ok:
			bad(at+".kind", g.Kind, "unknown gate kind: want %s", list)
			continue
		}
		for key := range gateFieldIndex {
			if key != "kind" && rb.pos.Has(at+"."+key) && !slices.Contains(k.fields, key) {
				bad(at+"."+key, "", "not a field of a %s gate (it takes %s)", g.Kind, strings.Join(k.fields, ", "))
			}
		}
		if j, dup := kinds[g.Kind]; dup && !k.many {
			bad(at+".kind", g.Kind, "a second %s gate (also gates[%d]): merge them", g.Kind, j)
		}
		kinds[g.Kind] = i
		k.check(rb, g, at, bad)
	}
}

// positive reports a duration field that is not more than 0.
func positive(bad badFunc, at, field string, d time.Duration) {
	if d <= 0 {
		bad(at+"."+field, d.String(), "must be more than 0")
	}
}

// Settings returns the fields that apply to the gate's kind as text.
func (g GateConfig) Settings() map[string]string {
	m := map[string]string{}
	v := reflect.ValueOf(g)
	for _, key := range gateKinds[g.Kind].fields {
		switch f := v.FieldByIndex(gateFieldIndex[key]).Interface().(type) {
		case time.Duration:
			m[key] = f.String()
		case float64:
			m[key] = strconv.FormatFloat(f, 'g', -1, 64)
		default:
			m[key] = fmt.Sprint(f)
		}
	}
	return m
}

// String describes the gate and its settings in one line.
func (g GateConfig) String() string {
	if k, ok := gateKinds[g.Kind]; ok {
		return k.describe(g)
	}
	return g.Kind
}

// Gate builds the live gate that judges a batch after convergence, with p
// probing VMs; nil for a kind that is not a health gate (bgp).
func (g GateConfig) Gate(p health.Prober) health.Gate {
	if k, ok := gateKinds[g.Kind]; ok && k.live != nil {
		return k.live(g, p)
	}
	return nil
}

// Least is the shortest time a batch can take to pass the gate (the dry
// run's estimate).
func (g GateConfig) Least() time.Duration {
	if k, ok := gateKinds[g.Kind]; ok && k.least != nil {
		return k.least(g)
	}
	return 0
}

// ConvergeTimeout is how long the observed peers may take to hold a
// batch's routes: the bgp gate's timeout; 0 when the runbook has no bgp
// gate (convergence is then not waited for).
func (rb *Runbook) ConvergeTimeout() time.Duration {
	for _, g := range rb.Gates {
		if g.Kind == GateBGP {
			return g.Timeout
		}
	}
	return 0
}
