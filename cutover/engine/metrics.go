package engine

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the engine's Prometheus metrics. A nil *Metrics records
// nothing, so tests and dry runs need none.
type Metrics struct {
	batches   *prometheus.GaugeVec
	movedVMs  prometheus.Gauge
	totalVMs  prometheus.Gauge
	phase     *prometheus.GaugeVec
	changes   *prometheus.HistogramVec
	rolled    prometheus.Counter
	journaled prometheus.Counter
	unusable  prometheus.Gauge
	held      prometheus.Gauge
	waiting   *prometheus.GaugeVec
	waitSince prometheus.Gauge
	verdicts  *prometheus.CounterVec
	rounds    *prometheus.CounterVec

	mu        sync.Mutex // guards waitPoint
	waitPoint string     // the go/no-go point shown as waited at; "": none
}

// NewMetrics registers the engine's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		batches: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cutover_batches",
			Help: "Batches of the current run by phase."}, []string{"phase"}),
		movedVMs: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cutover_moved_vms",
			Help: "VMs whose traffic is at the target site."}),
		totalVMs: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cutover_total_vms",
			Help: "VMs in the current run."}),
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cutover_run_phase",
			Help: "1 for the run's current phase."}, []string{"phase"}),
		changes: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cutover_change_seconds",
			Help:    "Time to apply one change to BGP and nft, by operation.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"op"}),
		rolled: prometheus.NewCounter(prometheus.CounterOpts{Name: "cutover_rollbacks_total",
			Help: "Batches rolled back."}),
		journaled: prometheus.NewCounter(prometheus.CounterOpts{Name: "cutover_journal_records_total",
			Help: "Records appended to the journal."}),
		unusable: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cutover_journal_unusable",
			Help: "1 while the journal cannot be written or its file system is full: the run takes no step forward."}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cutover_journal_held_records",
			Help: "Records held in memory because the journal could not take them yet."}),
		waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cutover_run_waiting",
			Help: "1 for the go/no-go point the run waits at (cutover confirm answers it); no series while it waits at none."}, []string{"point"}),
		waitSince: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cutover_run_waiting_since_seconds",
			Help: "Unix time at which the run stopped at the go/no-go point it waits at (a no-go starts the wait again); 0 while it waits at none."}),
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cutover_gate_verdicts_total",
			Help: "Gate verdicts on batches, by gate and result (pass, fail); a gate stopped because another failed first counts as fail."}, []string{"gate", "result"}),
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cutover_gate_rounds_total",
			Help: "Rounds of a gate that did not decide yet (a probe round over a batch's VMs, a Prometheus query), by gate; the deciding round is a verdict."}, []string{"gate"}),
	}
	reg.MustRegister(m.batches, m.movedVMs, m.totalVMs, m.phase, m.changes, m.rolled, m.journaled, m.unusable, m.held,
		m.waiting, m.waitSince, m.verdicts, m.rounds)
	return m
}

var (
	allBatchPhases = []BatchPhase{BatchPending, BatchAnnouncing, BatchGating, BatchCommitted, BatchRollingBack, BatchRolledBack, BatchHeld}
	allRunPhases   = []RunPhase{PhaseIdle, PhasePrechecking, PhaseRunning, PhasePaused, PhaseDone, PhaseAborted}
)

// observe counts a record written to the journal at at and shows the
// state after it.
func (m *Metrics) observe(s *RunState, at time.Time) {
	if m == nil {
		return
	}
	m.journaled.Inc()
	m.observeState(s, at)
}

// observeState shows the state after a record made at at (held in
// memory, or the journal's state when the engine starts).
func (m *Metrics) observeState(s *RunState, at time.Time) {
	if m == nil {
		return
	}
	m.observeWaiting(s, at)
	count := map[BatchPhase]int{}
	total := 0
	for _, b := range s.Batches {
		count[b.Phase]++
		total += b.VMs
	}
	for _, p := range allBatchPhases {
		m.batches.WithLabelValues(string(p)).Set(float64(count[p]))
	}
	for _, p := range allRunPhases {
		v := 0.0
		if p == s.Phase {
			v = 1
		}
		m.phase.WithLabelValues(string(p)).Set(v)
	}
	vms, _ := s.Moved()
	m.movedVMs.Set(float64(vms))
	m.totalVMs.Set(float64(total))
}

// observeWaiting shows the go/no-go point the run waits at, and since the
// record that stopped it there. A no-go clears the point for one record
// (the answer) and stops the run there again: the wait starts anew.
func (m *Metrics) observeWaiting(s *RunState, at time.Time) {
	point := ""
	if s.Phase == PhasePaused {
		point = s.Confirm
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if point == m.waitPoint {
		return
	}
	m.waitPoint = point
	m.waiting.Reset()
	if point == "" {
		m.waitSince.Set(0)
		return
	}
	m.waiting.WithLabelValues(point).Set(1)
	m.waitSince.Set(float64(at.UnixMilli()) / 1e3)
}

func (m *Metrics) observeJournal(js JournalStatus) {
	if m == nil {
		return
	}
	v := 0.0
	if js.Unusable {
		v = 1
	}
	m.unusable.Set(v)
	m.held.Set(float64(js.Held))
}

func (m *Metrics) observeChange(op string, took time.Duration) {
	if m == nil {
		return
	}
	m.changes.WithLabelValues(op).Observe(took.Seconds())
}

func (m *Metrics) rollbacks(n int) {
	if m == nil {
		return
	}
	m.rolled.Add(float64(n))
}

// GateRound counts a round of gate that did not decide yet (the daemon
// sees them as the gates report their progress). A nil *Metrics counts
// nothing.
func (m *Metrics) GateRound(gate string) {
	if m == nil {
		return
	}
	m.rounds.WithLabelValues(gate).Inc()
}

// gateVerdicts counts the verdicts of one judgement of a batch.
func (m *Metrics) gateVerdicts(vs []VerdictRecord) {
	if m == nil {
		return
	}
	for _, v := range vs {
		// Both results exist from a gate's first verdict on, so that
		// increase() sees the first failure after a pass.
		pass, fail := m.verdicts.WithLabelValues(v.Gate, "pass"), m.verdicts.WithLabelValues(v.Gate, "fail")
		if v.Pass {
			pass.Inc()
		} else {
			fail.Inc()
		}
	}
}
