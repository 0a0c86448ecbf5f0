package engine

import (
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
	}
	reg.MustRegister(m.batches, m.movedVMs, m.totalVMs, m.phase, m.changes, m.rolled, m.journaled, m.unusable, m.held)
	return m
}

var (
	allBatchPhases = []BatchPhase{BatchPending, BatchAnnouncing, BatchGating, BatchCommitted, BatchRollingBack, BatchRolledBack}
	allRunPhases   = []RunPhase{PhaseIdle, PhasePrechecking, PhaseRunning, PhasePaused, PhaseDone, PhaseAborted}
)

// observe counts a record written to the journal and shows the state.
func (m *Metrics) observe(s *RunState) {
	if m == nil {
		return
	}
	m.journaled.Inc()
	m.observeState(s)
}

// observeState shows the state (after a record held in memory).
func (m *Metrics) observeState(s *RunState) {
	if m == nil {
		return
	}
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
