package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/cutover/cutover/bgp"
)

// series renders the named metrics of g as `name{label="value"} value`
// lines, sorted; histograms as their sample count.
func series(t *testing.T, g prometheus.Gatherer, names ...string) []string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out []string
	for _, mf := range mfs {
		if !slices.Contains(names, mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetGauge().GetValue()
			switch {
			case m.GetCounter() != nil:
				v = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				v = float64(m.GetHistogram().GetSampleCount())
			}
			out = append(out, fmt.Sprintf("%s{%s} %g", mf.GetName(), strings.Join(labels, ","), v))
		}
	}
	slices.Sort(out)
	return out
}

func checkSeries(t *testing.T, what string, g prometheus.Gatherer, want ...string) {
	t.Helper()
	var names []string
	for _, w := range want {
		name, _, _ := strings.Cut(w, "{")
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(want)
	if got := series(t, g, names...); !slices.Equal(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

// withMetrics gives the harness's engine metrics in a new registry, as
// the daemon's would have from the start (the harness builds its engine
// without).
func withMetrics(t *testing.T, h *harness) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	h.e.mu.Lock()
	h.e.metrics = m
	m.observeState(&h.e.st, h.e.now())
	h.e.mu.Unlock()
	return reg
}

func unix(t time.Time) string { return fmt.Sprintf("%g", float64(t.UnixMilli())/1e3) }

// TestMetricsRun follows a run through its metrics: the go/no-go point
// it waits at and since when, the verdicts of every gate, the rollback
// and where the batches end.
func TestMetricsRun(t *testing.T) {
	clock := newFakeClock(t0) // the journal's: the records' times
	h := newHarnessWith(t, 3, RollbackBatch, func(h *harness) { h.j = &MemJournal{Now: clock.Now} })
	reg := withMetrics(t, h)
	checkSeries(t, "idle", reg,
		`cutover_run_phase{phase="idle"} 1`, `cutover_run_phase{phase="prechecking"} 0`, `cutover_run_phase{phase="running"} 0`,
		`cutover_run_phase{phase="paused"} 0`, `cutover_run_phase{phase="done"} 0`, `cutover_run_phase{phase="aborted"} 0`,
		`cutover_run_waiting_since_seconds{} 0`)

	h.failing[1] = true
	h.spec.Batches[0].Confirm = []string{"before-start"}
	h.spec.ConfirmEnd = []string{"before-end"}
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	h.wait("before-start", func(s RunState) bool { return s.Confirm == "before-start" })
	checkSeries(t, "at before-start", reg,
		`cutover_run_waiting{point="before-start"} 1`, `cutover_run_waiting_since_seconds{} `+unix(t0))

	clock.advance(t0.Add(time.Minute))
	if err := h.e.Confirm("before-start", true, "nina"); err != nil {
		t.Fatal(err)
	}
	h.wait("before-end", func(s RunState) bool { return s.Confirm == "before-end" })
	at := t0.Add(time.Minute)
	checkSeries(t, "at before-end", reg,
		`cutover_run_waiting{point="before-end"} 1`, `cutover_run_waiting_since_seconds{} `+unix(at))

	if err := h.e.Confirm("before-end", true, "nina"); err != nil {
		t.Fatal(err)
	}
	h.wait("the end", ended)
	checkSeries(t, "done", reg,
		`cutover_run_waiting_since_seconds{} 0`,
		`cutover_gate_verdicts_total{gate="bgp",result="fail"} 0`, `cutover_gate_verdicts_total{gate="bgp",result="pass"} 3`,
		`cutover_gate_verdicts_total{gate="probe",result="fail"} 1`, `cutover_gate_verdicts_total{gate="probe",result="pass"} 2`,
		`cutover_rollbacks_total{} 1`,
		`cutover_batches{phase="pending"} 0`, `cutover_batches{phase="announcing"} 0`, `cutover_batches{phase="gating"} 0`,
		`cutover_batches{phase="committed"} 2`, `cutover_batches{phase="rolling-back"} 0`, `cutover_batches{phase="rolled-back"} 1`, `cutover_batches{phase="held"} 0`,
		`cutover_moved_vms{} 2`, `cutover_total_vms{} 3`,
		`cutover_run_phase{phase="idle"} 0`, `cutover_run_phase{phase="prechecking"} 0`, `cutover_run_phase{phase="running"} 0`,
		`cutover_run_phase{phase="paused"} 0`, `cutover_run_phase{phase="done"} 1`, `cutover_run_phase{phase="aborted"} 0`,
		// baseline, three announces, one rollback
		`cutover_change_seconds{op="announce"} 3`, `cutover_change_seconds{op="baseline"} 1`, `cutover_change_seconds{op="rollback"} 1`)
	checkSeries(t, "records", reg, fmt.Sprintf("cutover_journal_records_total{} %d", len(h.j.Entries())))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := promlint.NewWithMetricFamilies(mfs).Lint(); err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %+v", err, problems)
	}
}

// TestMetricsConvergeFails: a batch whose routes the peers do not take
// fails the bgp gate.
func TestMetricsConvergeFails(t *testing.T) {
	h := newHarness(t, 1, RollbackBatch)
	reg := withMetrics(t, h)
	h.spec.Converge = func(context.Context, []bgp.Route) (string, error) {
		return "", errors.New("wait for convergence: 192.0.2.1 0/1 (missing 10.64.0.10/32): context deadline exceeded")
	}
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	h.wait("the end", ended)
	checkSeries(t, "done", reg,
		`cutover_gate_verdicts_total{gate="bgp",result="fail"} 1`, `cutover_gate_verdicts_total{gate="bgp",result="pass"} 0`)
}

// TestMetricsNoGoWaitsAnew: a no-go keeps the run at the point, and the
// wait starts at the answer.
func TestMetricsNoGoWaitsAnew(t *testing.T) {
	clock := newFakeClock(t0)
	h := newHarnessWith(t, 1, RollbackBatch, func(h *harness) { h.j = &MemJournal{Now: clock.Now} })
	reg := withMetrics(t, h)
	h.spec.Batches[0].Confirm = []string{"before-start"}
	if err := h.e.Start(h.spec, "nina", false); err != nil {
		t.Fatal(err)
	}
	h.wait("before-start", func(s RunState) bool { return s.Confirm == "before-start" })
	at := t0.Add(20 * time.Minute)
	clock.advance(at)
	if err := h.e.Confirm("before-start", false, "nina"); err != nil {
		t.Fatal(err)
	}
	checkSeries(t, "after no-go", reg,
		`cutover_run_waiting{point="before-start"} 1`, `cutover_run_waiting_since_seconds{} `+unix(at))
	if err := h.e.Rollback(t.Context(), AllBatches(), "nina"); err != nil {
		t.Fatal(err)
	}
	h.wait("the end", ended)
	checkSeries(t, "rolled back", reg, `cutover_run_waiting_since_seconds{} 0`)
	if got := series(t, reg, "cutover_run_waiting"); len(got) > 0 {
		t.Errorf("waiting at no point, but %v", got)
	}
}

// TestMetricsAtStart: a new engine shows the journaled state at once.
func TestMetricsAtStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	st := RunState{RunID: "r1", Phase: PhaseDone, Applied: []int{0},
		Batches: []BatchState{{Index: 0, VMs: 4, Phase: BatchCommitted}, {Index: 1, VMs: 2, Phase: BatchRolledBack}}}
	New(Config{Journal: &MemJournal{}, Metrics: NewMetrics(reg), State: st})
	checkSeries(t, "journaled state", reg,
		`cutover_moved_vms{} 4`, `cutover_total_vms{} 6`, `cutover_run_waiting_since_seconds{} 0`,
		`cutover_run_phase{phase="idle"} 0`, `cutover_run_phase{phase="prechecking"} 0`, `cutover_run_phase{phase="running"} 0`,
		`cutover_run_phase{phase="paused"} 0`, `cutover_run_phase{phase="done"} 1`, `cutover_run_phase{phase="aborted"} 0`)
}
