package runbook

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestGateKindsDocumented: every gate kind declared in a gate_*.go file has
// its rows in the field reference (runbooks/README.md, "### Gates"), and
// the rows name exactly the fields the kind takes.
func TestGateKindsDocumented(t *testing.T) {
	data, err := os.ReadFile("../../runbooks/README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	start := strings.Index(doc, "### Gates")
	if start < 0 {
		t.Fatal(`runbooks/README.md has no "### Gates" section`)
	}
	doc = doc[start:]
	if end := strings.Index(doc[1:], "\n### "); end >= 0 {
		doc = doc[:end+1]
	}
	fieldRE := regexp.MustCompile("`([a-z_]+)`")
	documented := map[string][]string{}
	kind := ""
	for _, line := range strings.Split(doc, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || strings.HasPrefix(strings.TrimSpace(cells[1]), "kind") || strings.HasPrefix(cells[1], "---") {
			continue
		}
		if k := strings.Trim(strings.TrimSpace(cells[1]), "`"); k != "" {
			kind = k
		}
		for _, m := range fieldRE.FindAllStringSubmatch(cells[2], -1) {
			documented[kind] = append(documented[kind], m[1])
		}
	}
	for _, k := range GateKinds() {
		got := slices.Sorted(slices.Values(documented[k]))
		want := slices.Sorted(slices.Values(gateKinds[k].fields))
		if !slices.Equal(got, want) {
			t.Errorf("gate kind %q: runbooks/README.md documents fields %v, the kind takes %v", k, got, want)
		}
		delete(documented, k)
	}
	for k := range documented {
		if k != "---" {
			t.Errorf("runbooks/README.md documents gate kind %q, which is not declared", k)
		}
	}
}

// TestGateKindDefaults: a gate written with only its kind gets every
// default of its kind, and a field the runbook wrote keeps its value.
func TestGateKindDefaults(t *testing.T) {
	for _, name := range GateKinds() {
		k := gateKinds[name]
		g := GateConfig{Kind: name}
		g.defaults("gates[0].", func(string) bool { return false })
		v := reflect.ValueOf(g)
		for field, want := range k.defaults {
			if got := v.FieldByIndex(gateFieldIndex[field]).Interface(); got != want {
				t.Errorf("%s: %s = %v after defaults, want %v", name, field, got, want)
			}
		}
		written := GateConfig{Kind: name, Within: 7 * time.Second, Timeout: 7 * time.Second, Interval: 7 * time.Second}
		written.defaults("gates[0].", func(p string) bool { return p != "gates[0].kind" })
		if written.Within != 7*time.Second || written.Timeout != 7*time.Second || written.Interval != 7*time.Second {
			t.Errorf("%s: defaults overwrote written fields: %+v", name, written)
		}
	}
}
