package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/evidence"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/cutover/report"
)

func TestPlanJSON(t *testing.T) {
	out, errOut, _, err := run(t, "plan", "-o", "json", "../../runbooks/helse-nord/runbook.yaml")
	if err != nil || errOut != "" {
		t.Fatalf("%v\n%s", err, errOut)
	}
	var plan struct {
		Digest  string `json:"digest"`
		Batches []struct {
			Index    int      `json:"index"`
			Name     string   `json:"name"`
			VMs      []string `json:"vms"`
			Prefixes []string `json:"prefixes"`
			Announce []struct {
				Prefix  string   `json:"prefix"`
				NextHop string   `json:"next_hop"`
				Peers   []string `json:"peers"`
				Attrs   struct {
					Communities []string `json:"communities"`
				} `json:"attrs"`
			} `json:"announce"`
			Withdraw []json.RawMessage `json:"withdraw"`
			NFT      struct {
				Add    []struct{ Set, Element string } `json:"add"`
				Remove []json.RawMessage               `json:"remove"`
			} `json:"nft"`
		} `json:"batches"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatal(err)
	}
	if len(plan.Digest) != 64 || len(plan.Batches) != 16 {
		t.Fatalf("digest %q, %d batches", plan.Digest, len(plan.Batches))
	}
	vms, prefixes := 0, map[string]bool{}
	for i, b := range plan.Batches {
		if b.Index != i || (i == 0) != (b.Name == "canary") {
			t.Errorf("batch %d: index %d name %q", i, b.Index, b.Name)
		}
		vms += len(b.VMs)
		if len(b.Announce) != len(b.Prefixes) || len(b.NFT.Add) != len(b.Prefixes) || b.Withdraw == nil || b.NFT.Remove == nil {
			t.Errorf("%s: %d prefixes, %d announced, %d nft elements", b.Name, len(b.Prefixes), len(b.Announce), len(b.NFT.Add))
		}
		for j, p := range b.Prefixes {
			prefixes[p] = true
			a := b.Announce[j]
			want4 := !strings.Contains(p, ":")
			if a.Prefix != p || (want4 && a.NextHop != "10.255.2.2") || (!want4 && a.NextHop != "fd00:255:2::2") ||
				len(a.Peers) != 1 || a.Peers[0] != "10.255.0.1" || a.Attrs.Communities[0] != "65100:2" {
				t.Fatalf("%s: announce %+v for %s", b.Name, a, p)
			}
			if e := b.NFT.Add[j]; e.Element != p {
				t.Fatalf("%s: nft element %+v for %s", b.Name, e, p)
			}
		}
	}
	if vms != 2000 || len(prefixes) != 2024 {
		t.Errorf("%d VMs, %d distinct prefixes", vms, len(prefixes))
	}
	again, _, _, _ := run(t, "plan", "-o", "json", "../../runbooks/helse-nord/runbook.yaml")
	if again != out {
		t.Error("two runs give different JSON")
	}
}

func TestPlanText(t *testing.T) {
	out, _, _, err := run(t, "plan", "--summary", "../../runbooks/helse-nord/runbook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"totals     2000 VMs, 2024 prefixes (2004 IPv4, 20 IPv6), 6 tenants, 16 batches\n",
		"BATCH      VMS  PREFIXES  TIER3  TIER2  TIER1  finnmark  hnikt  hsyk  nlsh  sykehusapotek  unn\n",
		"canary      10        10     10      0      0         2      2     2     2              1    1\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "announce to") {
		t.Error("--summary printed the details")
	}
	full, _, _, err := run(t, "plan", "../../runbooks/helse-nord/runbook.yaml")
	if err != nil || !strings.Contains(full, "\n  10.64.0.58/32 via 10.255.2.2 community 65100:2 large-community 65100:2:1\n") ||
		!strings.Contains(full, "\n  moved_skm2_v6 fd00:64::") {
		t.Errorf("details lack routes or nft elements (%v)", err)
	}
}

func TestPlanInvalidRunbook(t *testing.T) {
	out, errOut, code, err := run(t, "plan", "-o", "json", "../../cutover/runbook/testdata/bad/runbook.yaml")
	if code != 2 || out != "" || !strings.Contains(errOut, "bgp.local_as: AS 0 is reserved") {
		t.Errorf("code %d (%v), stdout %q, stderr:\n%s", code, err, out, errOut)
	}
}

const helseNord = "../../runbooks/helse-nord/runbook.yaml"

// TestPlanByTenant prints helse-nord's tenant schedules in every format,
// estimated from an empty store, then measured in a rehearsal record.
func TestPlanByTenant(t *testing.T) {
	store := t.TempDir()
	out, errOut, _, err := run(t, "plan", helseNord, "--by-tenant", "--evidence-dir", store)
	if err != nil || errOut != "" {
		t.Fatalf("%v\n%s", err, errOut)
	}
	for _, want := range []string{
		"times      estimated from the runbook: no rehearsal of these bytes in " + store + "\n",
		"estimate   a batch takes 1s to 1m34s",
		"start      not known: times are offsets from the run's start",
		"go/no-go   the run waits for a person's go at before-start (before canary), after-canary (before batch-01)",
		"\nfinnmark: 208 VMs, 212 addresses, in 5 batches, +0:00:00 – +0:23:01\n",
		"\n  +0:00:00 – +0:01:34   0  canary      1      1  estimate  before-start  unn-lab-001\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}

	csvOut, _, _, err := run(t, "plan", helseNord, "--by-tenant", "--evidence-dir", store, "-o", "csv", "--tenant", "unn", "--tenant", "hsyk")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	vms := map[string]int{}
	for _, r := range rows[1:] {
		n, _ := strconv.Atoi(r[4])
		vms[r[0]] += n
	}
	if rows[0][0] != "tenant" || len(rows) != 1+14+7 || vms["unn"] != 808 || vms["hsyk"] != 249 || len(vms) != 2 {
		t.Errorf("%d rows, VMs %v", len(rows), vms)
	}

	// A green rehearsal of these bytes: every batch 1 minute, 10 s apart.
	pl, _, err := plan.Load(helseNord)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Date(2026, 11, 30, 21, 0, 0, 0, time.UTC)
	rep := &report.Report{Runbook: helseNord, Started: started}
	for i, b := range pl.Batches {
		at := started.Add(time.Duration(i) * 70 * time.Second)
		rep.Batches = append(rep.Batches, report.Batch{Index: i, Name: b.Name, Phase: engine.BatchCommitted,
			Try: report.Try{Started: at.Add(10 * time.Second), Decided: at.Add(70 * time.Second)}})
	}
	if _, err := (evidence.Store{Dir: store}).Write(&evidence.Record{RehearsalRecord: report.RehearsalRecord{Runbook: pl.Runbook.Name,
		RunbookDigest: pl.Runbook.Digest, InventoryDigest: pl.Inventory.Digest, Rehearsed: started, Green: true,
		Outcome: engine.OutcomeAllMoved}, Report: rep}); err != nil {
		t.Fatal(err)
	}
	jsonOut, _, _, err := run(t, "plan", helseNord, "--by-tenant", "--evidence-dir", store, "-o", "json", "--start", "2026-12-03T23:00:00+01:00")
	if err != nil {
		t.Fatal(err)
	}
	var sched struct {
		Times struct {
			Source string `json:"source"`
			Text   string `json:"text"`
		} `json:"times"`
		Start   string `json:"start"`
		Tenants []struct {
			Tenant  string `json:"tenant"`
			VMs     int    `json:"vms"`
			Batches []struct {
				Index int      `json:"index"`
				VMs   []string `json:"vms"`
				FromS int64    `json:"from_s"`
				ToS   int64    `json:"to_s"`
				From  string   `json:"from"`
			} `json:"batches"`
		} `json:"tenants"`
	}
	if err := json.Unmarshal([]byte(jsonOut), &sched); err != nil {
		t.Fatal(err)
	}
	if sched.Times.Source != "rehearsals" || sched.Times.Text != "from 1 green rehearsal, 2026-11-30" || sched.Start != "2026-12-03T23:00:00+01:00" || len(sched.Tenants) != 6 {
		t.Fatalf("times %+v, start %q, %d tenants", sched.Times, sched.Start, len(sched.Tenants))
	}
	total := 0
	for _, tn := range sched.Tenants {
		total += tn.VMs
		for _, b := range tn.Batches {
			if want := int64(b.Index*70 + 10); b.FromS != want || b.ToS != want+60 {
				t.Errorf("%s batch %d: %d-%d s, want %d-%d", tn.Tenant, b.Index, b.FromS, b.ToS, want, want+60)
			}
		}
	}
	if total != 2000 || sched.Tenants[0].Batches[0].From != "2026-12-03T23:00:10+01:00" {
		t.Errorf("%d VMs, first from %s", total, sched.Tenants[0].Batches[0].From)
	}
}

func TestPlanICal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "calendars")
	out, _, _, err := run(t, "plan", helseNord, "--by-tenant", "--evidence-dir", t.TempDir(), "--start", "2026-12-03T23:00:00+01:00", "--ical", dir)
	if err != nil {
		t.Fatal(err)
	}
	want := "wrote 6 calendars to " + dir + ": finnmark.ics, hnikt.ics, hsyk.ics, nlsh.ics, sykehusapotek.ics, unn.ics\n"
	if !strings.HasPrefix(out, want) || !strings.Contains(out, "\ntimes estimated from the runbook: no rehearsal of these bytes in ") {
		t.Errorf("got %q\nwant %q…", out, want)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 6 {
		t.Fatalf("%d files (%v)", len(ents), err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "unn.ics"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "BEGIN:VEVENT\r\n"); n != 14 || !strings.Contains(string(data), "\r\nDTSTART:20261203T220000Z\r\n") {
		t.Errorf("unn.ics: %d events\n%.600s", n, data)
	}
	jsonOut, _, _, err := run(t, "plan", helseNord, "--by-tenant", "--evidence-dir", t.TempDir(), "--start", "2026-12-03T23:00:00Z", "--ical", dir, "--tenant", "unn", "-o", "json")
	if err != nil || !strings.Contains(jsonOut, `"files": [`+"\n    \""+filepath.Join(dir, "unn.ics")+"\"\n  ]") {
		t.Errorf("%v\n%s", err, jsonOut)
	}
}

// TestPlanByTenantErrors checks the refusals of plan's tenant flags: bad
// input, exit 2, with the exact error.
func TestPlanByTenantErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--by-tenant", "--ical", "cal"}, "--ical: a calendar needs clock times, and the runbook has no change window to start from: give the run's start with --start, such as --start 2026-12-03T23:00:00+01:00"},
		{[]string{"--by-tenant", "--start", "2026-12-03 23:00"}, `--start "2026-12-03 23:00": want a time in RFC 3339, such as 2026-12-03T23:00:00+01:00`},
		{[]string{"--by-tenant", "--tenant", "finmark"}, `--tenant "finmark": not a tenant of the inventory: did you mean "finnmark"?`},
		{[]string{"--by-tenant", "--tenant", "helse-vest"}, `--tenant "helse-vest": not a tenant of the inventory (its tenants: finnmark, hnikt, hsyk, nlsh, sykehusapotek, unn)`},
		{[]string{"--by-tenant", "--summary"}, "--summary: not with --by-tenant (the schedules have no details to leave out)"},
		{[]string{"--ical", "cal"}, "--ical: only with --by-tenant"},
		{[]string{"--tenant", "unn"}, "--tenant: only with --by-tenant"},
		{[]string{"--start", "2026-12-03T23:00:00Z"}, "--start: only with --by-tenant"},
		{[]string{"-o", "csv"}, "-o csv: only with --by-tenant (a plan is text or json)"},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		args := append([]string{"plan", helseNord, "--evidence-dir", dir}, tt.args...)
		for i, a := range args {
			if a == "cal" {
				args[i] = filepath.Join(dir, "cal")
			}
		}
		want := tt.want
		out, _, code, err := run(t, args...)
		if code != 2 || err == nil || err.Error() != want || out != "" {
			t.Errorf("%v: code %d, stdout %q, error %v\nwant %s", tt.args, code, out, err, want)
		}
		if _, err := os.Stat(filepath.Join(dir, "cal")); err == nil {
			t.Errorf("%v: wrote %s", tt.args, filepath.Join(dir, "cal"))
		}
	}
}
