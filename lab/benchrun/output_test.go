package benchrun

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/engine"
)

const ms = time.Millisecond

// fixedResult is a bench of 30 VMs with every figure set.
func fixedResult() *Result {
	return &Result{
		Lab: "benchrun", VMs: 30, Prefixes: 30, Canary: 4, BatchSize: 13, Outcome: engine.OutcomeAllMoved,
		Batches: []Batch{
			{Name: "canary", VMs: 4, Prefixes: 4, Result: engine.BatchCommitted, Announce: 3 * ms, Converge: 105 * ms, Gate: 2012 * ms},
			{Name: "batch-01", VMs: 13, Prefixes: 13, Result: engine.BatchCommitted, Announce: 12 * ms, Converge: 230 * ms, Gate: 2004 * ms},
			{Name: "batch-02", VMs: 13, Prefixes: 13, Result: engine.BatchRolledBack, Announce: 11 * ms, Converge: 0, Gate: 0},
		},
		LabUp: 4321 * ms, RunTook: 9876 * ms, Rollback: 812 * ms, DaemonRollback: 301 * ms,
		Reference: &Reference{Prefixes: 30, Announce: 902 * ms, Withdraw: 745 * ms},
		Ratio:     float64(812) / 745, DaemonPeakRSS: 312<<20 + 1000, Took: 25 * time.Second,
		Problems: []string{"outcome done; committed [0 1]; rolled back [2]"},
	}
}

func TestWriteText(t *testing.T) {
	want := `bench run: 30 VMs (30 prefixes) in lab benchrun, canary 4, batches of 13, outcome all-moved

batch           VMs  prefixes   announce   converge       gate
canary            4         4    0.003 s    0.105 s    2.012 s
batch-01         13        13    0.012 s    0.230 s    2.004 s
batch-02         13        13    0.011 s          -          -  rolled-back
announce: the daemon's change (BGP and nft); converge: until the edge held the batch's routes (bgp gate); gate: the probe gate

run took             9.876 s (lab up 4.321 s; the whole bench 25.000 s)
rollback --all       0.812 s from the command until the edge's FIB sent every VM back to skm1 (the daemon's change: 0.301 s)
reference withdraw   0.745 s: a bare GoBGP, the same 30 prefixes, until the edge's FIB held none (its announce: 0.902 s)
ratio                1.09x rollback / reference withdraw (target ≤ 1.10x)
daemon peak RSS      312 MB
PROBLEM  outcome done; committed [0 1]; rolled back [2]
`
	var b strings.Builder
	if err := fixedResult().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if b.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWriteTextNotMeasured(t *testing.T) {
	res := &Result{Lab: "x", VMs: 1, Canary: 0, BatchSize: 1}
	var b strings.Builder
	if err := res.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"bench run: 1 VMs (0 prefixes) in lab x, canary 0, batches of 1, outcome none\n",
		"rollback --all       not measured\n",
		"reference withdraw   not measured\n",
		"daemon peak RSS      not measured\n",
	} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("text lacks %q:\n%s", line, b.String())
		}
	}
	if strings.Contains(b.String(), "ratio") {
		t.Errorf("a ratio without a reference:\n%s", b.String())
	}
}

func TestResultJSON(t *testing.T) {
	res := fixedResult()
	res.Batches = res.Batches[:1]
	res.Problems = nil
	res.Runbook = "/tmp/b/runbook.yaml"
	got, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"lab":"benchrun","vms":30,"prefixes":30,"canary":4,"batch_size":13,"runbook":"/tmp/b/runbook.yaml",` +
		`"outcome":"all-moved","batches":[{"name":"canary","vms":4,"prefixes":4,"result":"committed",` +
		`"announce":3000000,"converge":105000000,"gate":2012000000}],"lab_up":4321000000,"run_took":9876000000,` +
		`"rollback":812000000,"daemon_rollback":301000000,"reference":{"prefixes":30,"announce":902000000,"withdraw":745000000},` +
		`"ratio":1.0899328859060402,"daemon_peak_rss_bytes":327156712,"took":25000000000}`
	if string(got) != want {
		t.Errorf("JSON:\n%s\nwant:\n%s", got, want)
	}
}
