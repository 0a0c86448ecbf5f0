package plan

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/cutover/cutover/cutover/runbook/runbooktest"
)

// TestPlanRedactsURL: a Prometheus gate's URL with a password and a token
// (the base runbook has none) is shown redacted in the text and the JSON.
func TestPlanRedactsURL(t *testing.T) {
	const secretURL = "https://alice:pw0rd@prom.example:9090/prom?tenant=icu&token=t0ps3cret"
	path := runbooktest.WriteCase(t, "../runbook/testdata/base", []runbooktest.Edit{{"  - {kind: probe, min_healthy: 99%}",
		"  - {kind: probe, min_healthy: 99%}\n  - {kind: prometheus, url: \"" + secretURL + "\", query: \"sum(up)\", op: \">=\", value: 3}"}}, "")
	pl, _, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := pl.Runbook.Gates[2].URL; got != secretURL {
		t.Fatalf("the runbook's URL is %q: the gate must keep it to ask Prometheus", got)
	}
	const wantText = "prometheus: sum(up) >= 3 at https://xxxxx@prom.example:9090/prom?tenant=xxxxx&token=xxxxx, every 5s, within 1m0s"

	var text bytes.Buffer
	if err := pl.WriteText(&text, TextOptions{Summary: true}); err != nil {
		t.Fatal(err)
	}
	// The third gate's row of the header: no key, the description.
	if row := "\n" + strings.Repeat(" ", 11) + wantText + "\n"; !strings.Contains(text.String(), row) {
		t.Errorf("the text has no row %q:\n%s", row, text.String())
	}

	var js bytes.Buffer
	if err := pl.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var out struct{ Gates []gateJSON }
	if err := json.Unmarshal(js.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	want := gateJSON{Kind: "prometheus", Text: wantText, Settings: map[string]string{
		"url": "https://xxxxx@prom.example:9090/prom?tenant=xxxxx&token=xxxxx", "query": "sum(up)", "op": ">=", "value": "3",
		"interval": "5s", "timeout": "5s", "within": "1m0s", "rise": "1", "fall": "1"}}
	if len(out.Gates) != 3 || !reflect.DeepEqual(out.Gates[2], want) {
		t.Errorf("gates in the JSON\n got %+v\nwant [2] %+v", out.Gates, want)
	}

	for _, secret := range []string{"alice", "pw0rd", "icu", "t0ps3cret"} {
		if strings.Contains(text.String(), secret) || strings.Contains(js.String(), secret) {
			t.Errorf("the plan shows %q", secret)
		}
	}
}
