package report_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/cutover/report"
)

// build runs r to its end and builds the report with in.
func build(t *testing.T, r *run, in report.Input) *report.Report {
	t.Helper()
	r.runToEnd()
	in.Entries = r.j.Entries()
	rep, err := report.Build(in)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return rep
}

// renderings are the report as people read it.
func renderings(t *testing.T, rep *report.Report) map[string]string {
	t.Helper()
	js, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"md": string(rep.Markdown()), "html": string(rep.HTML()), "svg": string(rep.SVG()), "json": string(js)}
}

// TestBanner: the outcome says whether every VM moved, names every batch
// left at the source with how, and says how to move them.
func TestBanner(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(r *run)
		outcome engine.Outcome
		tone    string
		banner  string
	}{
		{"all moved", func(*run) {}, engine.OutcomeAllMoved, report.ToneOK,
			"done — all moved: 500 of 500 VMs at skm2 (100%)"},
		{"partial, one batch rolled back", func(r *run) { r.gateFails[2] = -1 }, engine.OutcomePartial, report.ToneWarn,
			"done — partial: 150 VMs (batch 2 b02-hsyk rolled back) still at skm1; cutover retry moves them. 350 of 500 VMs at skm2 (70%)."},
		{"partial, rolled back and held", func(r *run) { r.gateFails[2] = -1; r.checkReady(3, -1) }, engine.OutcomePartial, report.ToneWarn,
			"done — partial: 290 VMs (batch 2 b02-hsyk rolled back, batch 3 b03-nlsh held) still at skm1; cutover retry moves them. 210 of 500 VMs at skm2 (42%)."},
		{"aborted by the policy", func(r *run) { r.gateFails[2] = -1; r.spec.Policy = engine.RollbackAll }, engine.OutcomeAborted, report.ToneBad,
			"aborted — rolled back: gate failed: probe: " + gateReason + " (+1 more); 0 of 500 VMs at skm2 (0%); " +
				"360 VMs (batch 0 b00-canary rolled back, batch 1 b01-unn rolled back, batch 2 b02-hsyk rolled back) back at skm1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRun(t)
			tt.setup(r)
			rep := build(t, r, report.Input{})
			if rep.Outcome != tt.outcome || rep.Tone != tt.tone || rep.Banner != tt.banner {
				t.Errorf("outcome %q tone %q banner\n got %q\nwant %q", rep.Outcome, rep.Tone, rep.Banner, tt.banner)
			}
			out := renderings(t, rep)
			for format, want := range map[string]string{
				"md":   "**Outcome:** " + tt.banner + "\n",
				"html": `<p class="outcome ` + tt.tone + `" id="outcome">` + htmlText(tt.banner) + "</p>",
			} {
				if !strings.Contains(out[format], want) {
					t.Errorf("%s lacks %q", format, want)
				}
			}
		})
	}
}

// htmlText escapes s as html/template does in text.
func htmlText(s string) string {
	return strings.NewReplacer("&", "&amp;", "'", "&#39;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "+", "&#43;").Replace(s)
}

// TestBatchesAtSourceListed: rolled-back and held batches are named in
// the totals and the picture, never only counted.
func TestBatchesAtSourceListed(t *testing.T) {
	r := newRun(t)
	r.gateFails[2] = -1
	r.checkReady(3, -1)
	rep := build(t, r, report.Input{})
	out := renderings(t, rep)
	for format, wants := range map[string][]string{
		"md": {
			"- VMs still at skm1: 290 — batch 2 b02-hsyk rolled back, batch 3 b03-nlsh held\n",
			"- Rolled back: batch 2 b02-hsyk (150 VMs)\n",
			"- Held (not ready at the target): batch 3 b03-nlsh (140 VMs)\n",
			"| 3 | b03-nlsh | 140 | held |  |  |  |  | held 23:01:46 (not ready at the target) |  |  | not ready: 2 failing |",
			"### Batch 3 b03-nlsh — not ready at the target at 23:01:46 (readiness check, took 1s)\n\n" +
				"- ready: FAIL — vm-3a 10.64.3.10: tcp 443: i/o timeout\n- ready: FAIL — vm-3b 10.64.3.11: tcp 443: i/o timeout\n",
		},
		"html": {
			`<small>batch 2 b02-hsyk (150 VMs)</small>`,
			`<small>batch 3 b03-nlsh (140 VMs)</small>`,
			`<span class="pill warn">held</span>`,
		},
		"svg": {
			`aria-label="Timeline of run 20260314T230000Z: 4 batches, 2 committed; left at the source: batch 2 b02-hsyk rolled back, batch 3 b03-nlsh held"`,
			`<g class="held"><title>batch 3 b03-nlsh held at 23:01:46, never moved: not ready: 0/2 VMs answer at skm2`,
			`class="seg seg-ready"`,
		},
	} {
		for _, want := range wants {
			if !strings.Contains(out[format], want) {
				t.Errorf("%s lacks %q", format, want)
			}
		}
	}
}

// TestGateCount: the gates column counts the gates of the last
// evaluation, in the singular for one, and a held batch shows its
// readiness check.
func TestGateCount(t *testing.T) {
	pass := func(name string) engine.VerdictRecord { return engine.VerdictRecord{Gate: name, Pass: true} }
	tests := []struct {
		name     string
		verdicts []engine.VerdictRecord // of every gate evaluation
		ready    bool                   // the canary is never ready at the target
		want     string
	}{
		{"one gate", []engine.VerdictRecord{pass("bgp")}, false, "pass (1 gate)"},
		{"two gates", []engine.VerdictRecord{pass("bgp"), pass("probe")}, false, "pass (2 gates)"},
		{"three gates", []engine.VerdictRecord{pass("bgp"), pass("probe"), pass("prometheus")}, false, "pass (3 gates)"},
		{"one of two failing", []engine.VerdictRecord{pass("bgp"), {Gate: "probe", Reasons: []string{"x"}, Failed: []string{"a", "b", "c"}}}, false,
			"FAIL probe: 3 failing (1 of 2 gates)"},
		{"every gate failing", []engine.VerdictRecord{{Gate: "probe", Reasons: []string{"x"}}}, false, "FAIL probe"},
		{"held by the readiness check", []engine.VerdictRecord{pass("bgp")}, true, "not ready: 2 failing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRun(t)
			pass := true
			for _, v := range tt.verdicts {
				pass = pass && v.Pass
			}
			r.spec.Gate = func(context.Context, int, []string) (bool, []engine.VerdictRecord) {
				r.clock.Advance(3 * time.Second)
				return pass, tt.verdicts
			}
			if tt.ready {
				r.checkReady(0, -1)
			}
			md := string(build(t, r, report.Input{}).Markdown())
			row := regexp.MustCompile(`(?m)^\| 0 \| b00-canary \|.*$`).FindString(md)
			if !strings.HasSuffix(row, " | "+tt.want+" |") {
				t.Errorf("canary's row %q, want it to end with %q", row, tt.want)
			}
		})
	}
}

// TestRouteWithoutNextHop: a connected route reads "connected", never
// "via invalid IP".
func TestRouteWithoutNextHop(t *testing.T) {
	tests := []struct {
		name, before, after string
		want                []string // lines of the shown "after" snapshot
		added               []string
	}{
		{"as the lab captures the edge's FIB",
			"2 routes in the edge's main table\n     1  10.64.0.0/14           via invalid IP\n",
			"3 routes in the edge's main table\n     1  10.64.0.0/14           via invalid IP\n     2  host                   via 10.255.2.2\n",
			[]string{"     1  10.64.0.0/14           connected", "     2  host                   via 10.255.2.2"},
			[]string{"3 routes in the edge's main table", "     2  host                   via 10.255.2.2"}},
		{"a nil net.IP, with its interface",
			"10.64.0.0/14 via 10.255.1.2 dev eth1\n",
			"10.64.0.0/14 via <nil> dev eth1\n",
			[]string{"10.64.0.0/14 connected dev eth1"},
			[]string{"10.64.0.0/14 connected dev eth1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := build(t, newRun(t), report.Input{Snapshots: []report.Snapshot{
				{Name: "edge routes before", Text: tt.before}, {Name: "edge routes after", Text: tt.after}}})
			if got := strings.Split(strings.TrimSpace(rep.Snapshots[1].Text), "\n"); !reflect.DeepEqual(got[len(got)-len(tt.want):], tt.want) {
				t.Errorf("after snapshot %q, want it to end with %q", got, tt.want)
			}
			if len(rep.Diffs) != 1 || !reflect.DeepEqual(rep.Diffs[0].Added, tt.added) {
				t.Errorf("diffs %+v, want added %q", rep.Diffs, tt.added)
			}
			for format, text := range renderings(t, rep) {
				for _, bad := range []string{"invalid IP", "&lt;nil&gt;", "<nil>"} {
					if strings.Contains(text, bad) {
						t.Errorf("%s shows %q", format, bad)
					}
				}
			}
		})
	}
}

// nft tables as `nft list table` prints them, and as the lab wraps nft's
// error when the table does not exist.
const (
	nftMissing     = "Error: No such file or directory\nlist table inet cutover\n                ^^^^^^^\n"
	nftMissingLab  = "(no table: Error: No such file or directory\nlist table inet cutover\n                ^^^^^^^)"
	nftThreeMoved  = "table inet cutover {\n\tset skm2_v4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = { 10.64.0.0/24, 10.64.1.0/24,\n\t\t\t     10.64.3.0/24 }\n\t}\n\tchain prerouting {\n\t\tip daddr @skm2_v4 meta mark set 0x2\n\t}\n}\n"
	nftTwoSets     = "table inet cutover {\n\tset skm2_v4 {\n\t\ttype ipv4_addr\n\t\telements = { 10.64.0.0/24, 10.64.2.0/24 }\n\t}\n\tset skm2_hosts_v4 {\n\t\ttype ipv4_addr\n\t\telements = { 10.64.9.1 expires 29s, 10.64.9.2 expires 12s }\n\t}\n}\n"
	nftTwoSetsNext = "table inet cutover {\n\tset skm2_v4 {\n\t\ttype ipv4_addr\n\t\telements = { 10.64.0.0/24, 10.64.1.0/24,\n\t\t\t     10.64.3.0/24 }\n\t}\n\tset skm2_hosts_v4 {\n\t\ttype ipv4_addr\n\t\telements = { 10.64.9.1 expires 3s, 10.64.9.2 expires 1s }\n\t}\n\tset skm3_v4 {\n\t\ttype ipv4_addr\n\t\telements = { 10.68.0.0/24 }\n\t}\n}\n"
)

// TestNftSetDiff: the nft table is compared set by set, and a table that
// was not there is said so, not shown as nft's error.
func TestNftSetDiff(t *testing.T) {
	three := []string{"10.64.0.0/24", "10.64.1.0/24", "10.64.3.0/24"}
	tests := []struct {
		name, before, after string
		want                report.Diff
		md                  []string
	}{
		{"table created by the run", nftMissing, nftThreeMoved,
			report.Diff{Name: "nft table", Kind: report.DiffSets, Before: "no table (created by the run)",
				Sets: []report.SetDiff{{Set: "skm2_v4", Added: three}}},
			[]string{"### nft table: before → after, 3 elements added, 0 removed, 0 kept\n\nBefore: no table (created by the run).\n\n" +
				"| Set | Added | Removed | Kept |\n|---|---:|---:|---:|\n| skm2\\_v4 | 3 | 0 | 0 |\n",
				"```diff\n@@ skm2_v4 @@\n+ 10.64.0.0/24\n+ 10.64.1.0/24\n+ 10.64.3.0/24\n```\n",
				"### nft table before\n\n```\nno table inet cutover\n```\n"}},
		{"table created by the run, as the lab wraps nft's error", nftMissingLab, nftThreeMoved,
			report.Diff{Name: "nft table", Kind: report.DiffSets, Before: "no table (created by the run)",
				Sets: []report.SetDiff{{Set: "skm2_v4", Added: three}}},
			[]string{"Before: no table (created by the run).", "### nft table before\n\n```\nno table inet cutover\n```\n"}},
		{"table removed by the run", nftThreeMoved, nftMissing,
			report.Diff{Name: "nft table", Kind: report.DiffSets, After: "no table (removed by the run)",
				Sets: []report.SetDiff{{Set: "skm2_v4", Removed: three}}},
			[]string{"### nft table: before → after, 0 elements added, 3 removed, 0 kept\n\nAfter: no table (removed by the run).\n"}},
		{"elements added, removed and kept, a set created", nftTwoSets, nftTwoSetsNext,
			report.Diff{Name: "nft table", Kind: report.DiffSets, Sets: []report.SetDiff{
				{Set: "skm2_v4", Added: []string{"10.64.1.0/24", "10.64.3.0/24"}, Removed: []string{"10.64.2.0/24"}, Kept: 1},
				{Set: "skm2_hosts_v4", Kept: 2},
				{Set: "skm3_v4", Added: []string{"10.68.0.0/24"}, Note: "new set"},
			}},
			[]string{"### nft table: before → after, 3 elements added, 1 removed, 3 kept\n",
				"| skm2\\_v4 | 2 | 1 | 1 |\n| skm2\\_hosts\\_v4 | 0 | 0 | 2 |\n| skm3\\_v4 (new set) | 1 | 0 | 0 |\n",
				"```diff\n@@ skm2_v4 @@\n- 10.64.2.0/24\n+ 10.64.1.0/24\n+ 10.64.3.0/24\n@@ skm3_v4 @@\n+ 10.68.0.0/24\n```\n"}},
		{"a capture cut short", nftTwoSets, "table inet cutover {\n\tset skm2_v4 {\n\t\telements = { 10.64.0.0/24, 10.64.1.0/24,\n… 40 more lines",
			report.Diff{Name: "nft table", Kind: report.DiffSets, Cut: true, Sets: []report.SetDiff{
				{Set: "skm2_v4", Added: []string{"10.64.1.0/24"}, Removed: []string{"10.64.2.0/24"}, Kept: 1},
				{Set: "skm2_hosts_v4", Removed: []string{"10.64.9.1", "10.64.9.2"}, Note: "set removed"},
			}},
			[]string{"A snapshot was cut short: only the elements it holds are compared."}},
		{"a table nft could not read", "Error: Could not process rule: Operation not permitted\n", nftThreeMoved,
			report.Diff{Name: "nft table", Kind: report.DiffSets, Before: "not read: Could not process rule: Operation not permitted",
				Sets: []report.SetDiff{{Set: "skm2_v4", Added: three}}},
			[]string{"Before: not read: Could not process rule: Operation not permitted."}},
		{"a table nft could not read, as the lab wraps it", "(no table: Error: Could not process rule: Operation not permitted\nlist table inet cutover\n ^^^)", nftThreeMoved,
			report.Diff{Name: "nft table", Kind: report.DiffSets, Before: "not read: Could not process rule: Operation not permitted",
				Sets: []report.SetDiff{{Set: "skm2_v4", Added: three}}},
			[]string{"Before: not read: Could not process rule: Operation not permitted."}},
		{"nft not run, as the lab wraps it", `(no table: exec: "nft": executable file not found in $PATH)`, nftThreeMoved,
			report.Diff{Name: "nft table", Kind: report.DiffSets, Before: `not read: exec: "nft": executable file not found in $PATH`,
				Sets: []report.SetDiff{{Set: "skm2_v4", Added: three}}},
			[]string{`Before: not read: exec: "nft": executable file not found in $PATH.`}},
		{"not nft output: lines", "a\nb\n", "b\nc\n",
			report.Diff{Name: "nft table", Kind: report.DiffLines, Added: []string{"c"}, Removed: []string{"a"}},
			[]string{"### nft table: 1 line added, 1 removed\n\n```diff\n- a\n+ c\n```\n"}},
		{"no table before nor after", nftMissing, nftMissing,
			report.Diff{Name: "nft table", Kind: report.DiffSets, Before: "no table", After: "no table"},
			[]string{"### nft table: before → after, 0 elements added, 0 removed, 0 kept\n\nBefore: no table.\n\nAfter: no table.\n"}},
	}
	r := newRun(t)
	r.runToEnd()
	es := r.j.Entries()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := report.Build(report.Input{Entries: es, Snapshots: []report.Snapshot{
				{Name: "nft table before", Text: tt.before}, {Name: "nft table after", Text: tt.after}}})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Diffs) != 1 || !reflect.DeepEqual(rep.Diffs[0], tt.want) {
				t.Errorf("diffs\n got %+v\nwant %+v", rep.Diffs, tt.want)
			}
			out := renderings(t, rep)
			for _, want := range tt.md {
				if !strings.Contains(out["md"], want) {
					t.Errorf("markdown lacks %q", want)
				}
			}
			for format, text := range out {
				if strings.Contains(text, "No such file or directory") {
					t.Errorf("%s shows nft's error text", format)
				}
			}
		})
	}
}

// TestDigests: the runbook's and the inventory's digests each on their
// line, the plan digest the run journaled checked against them, and the
// digest of the journal records the report was read from, saying what it
// is over; the report of a run under way has them too.
func TestDigests(t *testing.T) {
	r := newRun(t, 2)
	r.runToEnd()
	entries := r.j.Entries()
	cut := len(entries) - 7 // under way, before batch 3 is decided
	edited := &plan.Snapshot{Runbook: append(bytes.Clone(runbookFile), "# edited\n"...), Inventory: inventoryFile}
	journalLine := func(n int) string {
		return fmt.Sprintf("| Journal digest | `%s` (SHA-256 over the %d journal records 1 to %d as read, each one line of compact JSON "+
			`{"seq","time" (RFC 3339, UTC),"type","data"} ending in a newline) |`, journalDigest(t, entries[:n]), n, n)
	}
	rbLine := "| Runbook digest | `" + runbookDigest + "` (SHA-256 of the runbook file) |"
	invLine := "| Inventory digest | `" + inventoryDigest + "` (SHA-256 of the inventory file) |"
	planLine := "| Plan digest | `" + planDigest + "` (journaled at run start: SHA-256 of the runbook and inventory digests"
	tests := []struct {
		name    string
		in      report.Input
		want    []string
		notWant []string
	}{
		{"the run's files", report.Input{Entries: entries, Files: files},
			[]string{rbLine, invLine, planLine + "; the digests above give it) |", journalLine(len(entries))}, nil},
		{"a runbook edited since", report.Input{Entries: entries, Files: edited},
			[]string{planLine + "; the digests above do NOT give it: these are not the files the run read) |", invLine}, []string{rbLine}},
		{"digests given, with their algorithm", report.Input{Entries: entries, RunbookDigest: "sha256:" + runbookDigest, InventoryDigest: inventoryDigest},
			[]string{"| Runbook digest | `sha256:" + runbookDigest + "` (SHA-256 of the runbook file) |", planLine + "; the digests above give it) |"}, nil},
		{"live, from the daemon's journal while the run is under way", report.Input{Entries: entries[:cut]},
			[]string{rbLine, invLine, planLine + "; the digests above give it) |", journalLine(cut)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := report.Build(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			md := string(rep.Markdown())
			for _, want := range tt.want {
				if !strings.Contains(md, want) {
					t.Errorf("markdown lacks\n%s", want)
				}
			}
			for _, bad := range append(tt.notWant, "Run digest") {
				if strings.Contains(md, bad) {
					t.Errorf("markdown has %q", bad)
				}
			}
			page := string(rep.HTML())
			for _, want := range []string{`<tr id="plan-digest"><th>Plan digest</th><td><code class="digest">` + planDigest + `</code>`,
				`<tr id="journal-digest"><th>Journal digest</th><td><code class="digest">` + rep.Journal.Digest + `</code>`} {
				if !strings.Contains(page, want) {
					t.Errorf("page lacks %q", want)
				}
			}
		})
	}
}

// journalDigest computes the journal digest as the report says it does,
// without the package's code.
func journalDigest(t *testing.T, es []engine.JournalEntry) string {
	t.Helper()
	h := sha256.New()
	for _, e := range es {
		var data bytes.Buffer
		if err := json.Compact(&data, e.Data); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, `{"seq":%d,"time":%q,"type":%q,"data":%s}`+"\n", e.Seq, e.Time.UTC().Format(time.RFC3339Nano), e.Type, data.String())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestJournalDigestTimeZone: the digest does not depend on the time zone
// the entries were read in.
func TestJournalDigestTimeZone(t *testing.T) {
	r := newRun(t)
	r.runToEnd()
	es := r.j.Entries()
	oslo := time.FixedZone("CET", 3600)
	local := make([]engine.JournalEntry, len(es))
	for i, e := range es {
		e.Time = e.Time.In(oslo)
		local[i] = e
	}
	a, err := report.JournalDigest(es)
	if err != nil {
		t.Fatal(err)
	}
	b, err := report.JournalDigest(local)
	if err != nil || a != b || a != journalDigest(t, es) {
		t.Errorf("digests %s and %s (%v), want %s", a, b, err, journalDigest(t, es))
	}
}

// svgCount counts the elements of the picture whose tag is tag and whose
// class list holds class.
func svgCount(svg, tag, class string) int {
	re := regexp.MustCompile(`<` + tag + ` class="([^"]*)"`)
	n := 0
	for _, m := range re.FindAllStringSubmatch(svg, -1) {
		for _, c := range strings.Fields(m[1]) {
			if c == class {
				n++
			}
		}
	}
	return n
}

// TestTimeline: the picture has a scale of VMs, a labelled band for
// every wait for a person, and rollbacks that say who and how long.
func TestTimeline(t *testing.T) {
	r := newRun(t)
	r.spec.Policy = engine.Pause
	r.gateFails[2] = 1
	if err := r.e.Start(r.spec, "alice", false); err != nil {
		t.Fatal(err)
	}
	r.answer(engine.ConfirmBaselineDown, 30*time.Second)
	r.answer("after-canary", time.Minute)
	r.wait("the pause after batch 2's gates", func(s engine.RunState) bool { return s.Pause == "gate-failed" })
	r.clock.Advance(2 * time.Minute)
	if err := r.e.Resume("alice"); err != nil {
		t.Fatal(err)
	}
	r.wait("the end", ended)
	r.clock.Advance(time.Minute)
	if err := r.e.Rollback(context.Background(), engine.OnlyBatch(1).Because("vm-07 crashed"), "dave"); err != nil {
		t.Fatal(err)
	}
	rep, err := report.Build(report.Input{Entries: r.j.Entries()})
	if err != nil {
		t.Fatal(err)
	}
	var waits []string
	for _, w := range rep.Waits {
		waits = append(waits, fmt.Sprintf("%s: %s (%s)", w.Why, w.Answer, w.To.Sub(w.From)))
	}
	wantWaits := []string{"go/no-go at baseline-down: go by bob (30.01s)", "go/no-go at after-canary: go by bob (1m0.01s)",
		"paused: gate failed: resumed by alice (2m0.02s)"}
	if !reflect.DeepEqual(waits, wantWaits) {
		t.Errorf("waits %q, want %q", waits, wantWaits)
	}
	// Batch 2 was announced twice: its first start stays in the picture.
	b2 := rep.Batches[2]
	if len(b2.Reruns) != 1 || b2.Reruns[0].Failed.IsZero() || b2.Reruns[0].Started.After(b2.Reruns[0].Failed) || !b2.Started.After(b2.Reruns[0].Failed) {
		t.Errorf("batch 2 started %s, reruns %+v", b2.Started, b2.Reruns)
	}
	svg := string(rep.SVG())
	for _, c := range []struct {
		tag, class string
		want       int
	}{{"text", "ytick", 6}, {"g", "wait", 3}, {"g", "wait-confirm", 2}, {"g", "wait-pause", 1}, {"text", "wait-label", 3}, {"g", "rollback", 1},
		{"rect", "seg-announce", 5}, {"rect", "seg-gate", 5}, {"rect", "seg-waiting", 1}} {
		if n := svgCount(svg, c.tag, c.class); n != c.want {
			t.Errorf("%d <%s class=%s>, want %d", n, c.tag, c.class, c.want)
		}
	}
	for _, want := range []string{
		`<text class="ytick" x="204" y="`, `>500</text>`,
		`<title>go/no-go at baseline-down: go by bob, 23:00:00–23:00:30 (30s)</title>`,
		`>go/no-go at baseline-down</text>`, `>go/no-go at after-canary</text>`, `>paused: gate failed</text>`,
		`<title>paused: gate failed: resumed by alice, 23:01:42–23:03:42 (2m0s)</title>`,
		`>rollback by dave · 220ms</text>`,
		`<title>rollback of 1 b01-unn at 23:04:50 by dave, 220ms: vm-07 crashed</title>`,
		`<title>batch 1 b01-unn: rollback by dave 220ms, 23:04:50–23:04:50</title>`,
		`<title>batch 2 b02-hsyk: waiting at the target after failed gates 2m0s, 23:01:42–23:03:42</title>`,
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("svg lacks %q", want)
		}
	}
	md := string(rep.Markdown())
	for _, want := range []string{
		"| 23:01:42 | 23:03:42 | 2m0s | paused: gate failed | resumed by alice |",
		"| 23:04:50 | dave | `cutover rollback --batch 1` — reason: vm-07 crashed |",
		"| 23:04:50 | 1 b01-unn | dave (`cutover rollback --batch 1`) | vm-07 crashed | 220ms |",
		"| rollback 23:04:50 by dave | 220ms | 4s | pass (2 gates) |",
		"| 2 | b02-hsyk | 150 | committed | 23:03:42 | 200ms | 710ms | 3s | commit 23:03:46 |  | 2m8s | pass (2 gates) |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
}

// TestRetry: a retry is in the audit, the events and the picture, and the
// tries it sent back stay in the report.
func TestRetry(t *testing.T) {
	r := newRun(t)
	r.gateFails[2] = 1
	r.checkReady(3, 1)
	r.runToEnd()
	r.clock.Advance(2 * time.Minute)
	if err := r.e.Retry(nil, "carol"); err != nil {
		t.Fatal(err)
	}
	r.wait("the end of the retry", func(s engine.RunState) bool { return s.Outcome() == engine.OutcomeAllMoved })
	rep, err := report.Build(report.Input{Entries: r.j.Entries()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Banner != "done — all moved: 500 of 500 VMs at skm2 (100%)" || rep.Totals.Retries != 1 {
		t.Errorf("banner %q, %d retries", rep.Banner, rep.Totals.Retries)
	}
	b2, b3 := rep.Batches[2], rep.Batches[3]
	if len(b2.Retries) != 1 || b2.Retries[0].Phase != engine.BatchRolledBack || b2.Retries[0].RollbackBy != "policy" ||
		b2.Retries[0].RollbackTook != 220*time.Millisecond || b2.Retries[0].RetryBy != "carol" || b2.Phase != engine.BatchCommitted ||
		!b2.Started.After(b2.Retries[0].RetryAt) || !b2.RollbackStart.IsZero() {
		t.Errorf("batch 2 %+v", b2)
	}
	if len(b3.Retries) != 1 || b3.Retries[0].Phase != engine.BatchHeld || !b3.Retries[0].Started.IsZero() || b3.Phase != engine.BatchCommitted {
		t.Errorf("batch 3 %+v", b3)
	}
	out := renderings(t, rep)
	for format, wants := range map[string][]string{
		"md": {
			"| carol | `cutover retry --batch 2,3` |",
			"| retry by carol: batch 2 b02-hsyk, 3 b03-nlsh back to pending",
			"| commit 23:03:51 (after 1 retry) |  | 4s | pass (2 gates) |",
			"### Tries before a retry\n\n" +
				"- batch 2 b02-hsyk, try 1: rolled back 23:01:45 by policy in 220ms (gate failed: probe: " + gateReason + " (+1 more)); retry by carol at 23:03:46\n" +
				"- batch 3 b03-nlsh, try 1: held 23:01:46 (not ready: 0/2 VMs answer at skm2: vm-3a 10.64.3.10: tcp 443: i/o timeout (+1 more: cutover status --batch 3)); retry by carol at 23:03:46\n",
		},
		"svg": {
			`<g class="retry"><title>batch 2 b02-hsyk retried by carol at 23:03:46</title>`,
			`<g class="retry"><title>batch 3 b03-nlsh retried by carol at 23:03:46</title>`,
			`<g class="held"><title>batch 3 b03-nlsh held at 23:01:46, never moved: not ready: 0/2 VMs answer at skm2`,
			`>rollback by policy · 220ms</text>`,
		},
		"html": {`<li>batch 2 b02-hsyk, try 1: rolled back 23:01:45 by policy in 220ms`},
	} {
		for _, want := range wants {
			if !strings.Contains(out[format], want) {
				t.Errorf("%s lacks %q", format, want)
			}
		}
	}
	if n := svgCount(out["svg"], "rect", "seg-rollback"); n != 1 {
		t.Errorf("%d rollback segments, want batch 2's first try", n)
	}
}

// TestRehearsalUnknowns: what the rehearsal did not record is left out,
// never shown as a zero.
func TestRehearsalUnknowns(t *testing.T) {
	r := newRun(t)
	r.runToEnd()
	es := r.j.Entries()
	tests := []struct {
		name      string
		rehearsal *report.Rehearsal
		want, not []string
	}{
		{"nothing timed", &report.Rehearsal{Expected: "all moved", Actual: "all moved", Passed: true,
			Faults: []report.Fault{{Fault: "vm-down", When: "batch 2", Result: "injected while the batch was gating"}}},
			[]string{"| Fault | When | Result |\n|---|---|---|\n| `vm-down` | batch 2 | injected while the batch was gating |\n"},
			[]string{"Took", "At (UTC)", "0s", "00:00:00"}},
		{"everything timed", &report.Rehearsal{Expected: "all moved", Actual: "all moved", Passed: true, Took: 3 * time.Minute,
			Faults: []report.Fault{{Fault: "vm-down", When: "batch 2", At: time.Date(2026, 3, 14, 23, 1, 40, 0, time.UTC), Result: "stopped"},
				{Fault: "bgp-flap", When: "batch 3", Result: "flapped"}}},
			[]string{"- Took: 3m0s\n", "| `vm-down` | batch 2 | 23:01:40 | stopped |\n| `bgp-flap` | batch 3 | not recorded | flapped |\n"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := report.Build(report.Input{Entries: es, Rehearsal: tt.rehearsal})
			if err != nil {
				t.Fatal(err)
			}
			md := string(rep.Markdown())
			section := md[strings.Index(md, "## Rehearsal"):]
			for _, want := range tt.want {
				if !strings.Contains(section, want) {
					t.Errorf("rehearsal section lacks %q:\n%s", want, section)
				}
			}
			page := string(rep.HTML())
			pageSection := page[strings.Index(page, `<section id="rehearsal-details">`):]
			for _, bad := range tt.not {
				if strings.Contains(section, bad) || strings.Contains(pageSection, bad) {
					t.Errorf("rehearsal shows %q", bad)
				}
			}
		})
	}
}
