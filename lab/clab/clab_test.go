package clab

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

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
	wantFiles := []string{"lab-files/edge/daemons", "lab-files/edge/frr.conf", "lab-files/edge/vtysh.conf", "lab-files/site.sh", "lab-files/vms.txt"}
	if got := ex.FileNames(); strings.Join(got, " ") != strings.Join(wantFiles, " ") {
		t.Errorf("files %v, want %v", got, wantFiles)
	}
	// The edge runs exactly the native lab's configuration.
	top, err := lab.NewTopology(lab.Config{VMs: lab.DefaultVMs(3)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(ex.Files["lab-files/edge/frr.conf"]), top.FRRConf(); got != want {
		t.Errorf("exported frr.conf differs from the rendered one")
	}
	if got := string(ex.Files["lab-files/vms.txt"]); got != "10.64.0.10/32\n10.64.0.11/32\n10.64.0.12/32\nfd00:64::10/128\n" {
		t.Errorf("vms.txt = %q", got)
	}

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
