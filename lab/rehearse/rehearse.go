package rehearse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/cutover/runbook"
	"github.com/cutover/cutover/lab"
	"github.com/cutover/cutover/lab/bgplab"
)

// Options say what to rehearse.
type Options struct {
	Runbook string  // path of the runbook, used unchanged
	Lab     string  // lab name, default "rehearse"
	VMs     int     // 0: every address of the inventory; else the first VMs addresses only
	Faults  []Fault // injected at their batches
	Keep    bool    // leave the lab (and the daemon) up afterwards
	// ReportDir receives report.md, report.html, timeline.svg, report.json;
	// default reports/<runbook name>-<time>.
	ReportDir string
	// Binary is the cutover executable started as the daemon in the lab
	// (default os.Executable(); a test binary serves it when its TestMain
	// calls serve.RunIfChild).
	Binary string
	// MeasureRollback rolls everything back after the run and measures how
	// long the edge's FIB takes to send every VM back to the source.
	MeasureRollback bool
	// ReachAll makes hosp fetch every VM address at the end (else a
	// sample of 50 per site).
	ReachAll bool
	// DrainTimeout of the nft dataplane (default 5s in the lab).
	DrainTimeout time.Duration
	Out          io.Writer // progress lines; nil: discarded
	Log          zerolog.Logger
	// Report writes the report; nil: none is written.
	Report func(dir string, in ReportInput) ([]string, error)
	// Confine, when set, starts the daemon as the systemd unit runs it:
	// its own user and only the unit's capabilities (see Confinement).
	Confine *Confinement
	// Retry: when the run ends with VMs left at the source (batches rolled
	// back or held), undo the faults, retry those batches (cutover retry)
	// without injecting anything new, follow the run to its end again and
	// check that it then moved every VM (Result.Retry).
	Retry bool
	// Fallback overrides the site the lab's covering routes lead to (the
	// runbook's fallback; see lab.ShapeOf).
	Fallback string
	// EdgeFlavors are the lab's edge routers (lab.Config.EdgeFlavors):
	// one flavour for every edge or one per edge; nil: FRR.
	EdgeFlavors []string
	// EvidenceDir is the store (package evidence) that receives each
	// step's record of what it proved; "": evidence.DefaultDir.
	EvidenceDir string
}

// ReportInput is what a rehearsal hands to the report writer.
type ReportInput struct {
	Entries         []engine.JournalEntry
	RunbookPath     string
	RunbookDigest   string
	InventoryDigest string
	Snapshots       []Snapshot
	Result          *Result
	// Took is how long the rehearsal had taken when the report was
	// written (Result.Took is set only when it ends).
	Took time.Duration
}

// Snapshot is a named text capture (edge routes, nft table).
type Snapshot struct {
	Name string
	Text string
}

// Outcome is how a run ended: its phase and where each batch stands.
type Outcome struct {
	Phase      engine.RunPhase `json:"phase"`
	Committed  []int           `json:"committed"`
	RolledBack []int           `json:"rolled_back"`
	// Held are the batches the readiness check kept at the source, never
	// announced.
	Held    []int `json:"held,omitempty"`
	Pending []int `json:"pending,omitempty"`
}

func (o Outcome) String() string {
	s := fmt.Sprintf("%s; committed %v; rolled back %v", o.Phase, o.Committed, o.RolledBack)
	if len(o.Held) > 0 {
		s += fmt.Sprintf("; held %v", o.Held)
	}
	return s + fmt.Sprintf("; pending %v", o.Pending)
}

func (o Outcome) equal(p Outcome) bool {
	return o.Phase == p.Phase && slices.Equal(o.Committed, p.Committed) &&
		slices.Equal(o.RolledBack, p.RolledBack) && slices.Equal(o.Held, p.Held) && slices.Equal(o.Pending, p.Pending)
}

// Injected records one injected fault and what was seen.
type Injected struct {
	Fault string `json:"fault"`
	Batch int    `json:"batch"`
	At    string `json:"at"` // phase of the batch when injected
	// Time is when it was injected.
	Time     time.Time `json:"time,omitzero"`
	VMs      []string  `json:"vms,omitempty"`
	Evidence []string  `json:"evidence,omitempty"`
}

// Result is what a rehearsal found.
type Result struct {
	Runbook  string  `json:"runbook"`
	Lab      string  `json:"lab"`
	VMs      int     `json:"vms"`
	Expected Outcome `json:"expected"`
	Actual   Outcome `json:"actual"`
	// Outcome is how the run ended, as the daemon says (all-moved,
	// partial, aborted), before any retry; AtSourceVMs and AtSourceBatches
	// are the VMs and batches it left at the source (rolled back or held).
	Outcome         engine.Outcome `json:"outcome"`
	AtSourceVMs     int            `json:"at_source_vms,omitempty"`
	AtSourceBatches []int          `json:"at_source_batches,omitempty"`
	// Retry is what Options.Retry did; nil when it was not asked for or
	// the run left nothing at the source to retry.
	Retry     *Retried      `json:"retry,omitempty"`
	OK        bool          `json:"ok"`
	Problems  []string      `json:"problems,omitempty"`
	Injected  []Injected    `json:"injected,omitempty"`
	LabUp     time.Duration `json:"lab_up"`
	RunTook   time.Duration `json:"run_took"`
	Took      time.Duration `json:"took"`
	Rollback  time.Duration `json:"rollback_all,omitempty"` // command → edge FIB back at the source
	Checked   []string      `json:"checked,omitempty"`      // what was verified at the end
	ReportDir string        `json:"report_dir,omitempty"`
	Reports   []string      `json:"reports,omitempty"`
	// Evidence is the file of the rehearsal's record in the evidence
	// store; "" when it could not be written (a problem then).
	Evidence string `json:"evidence,omitempty"`
	// DaemonPeakRSS is the daemon's peak resident set size in bytes
	// (VmHWM) when the run ended, after the rollback of MeasureRollback;
	// 0 when it could not be read. A daemon restarted by a fault counts
	// from its restart.
	DaemonPeakRSS int64 `json:"daemon_peak_rss_bytes,omitempty"`
}

// Retried is the retry of a run that left VMs at the source: the faults
// undone, the batches retried, how the run then ended and what was
// checked.
type Retried struct {
	Batches []int `json:"batches"` // the batches retried
	// Expected is every batch committed; Actual is where the batches stood
	// when the run ended again.
	Expected        Outcome        `json:"expected"`
	Actual          Outcome        `json:"actual"`
	Outcome         engine.Outcome `json:"outcome"`
	AtSourceVMs     int            `json:"at_source_vms,omitempty"`
	AtSourceBatches []int          `json:"at_source_batches,omitempty"`
	Took            time.Duration  `json:"took"` // from the retry to the run's end
	// Evidence: the faults undone before the retry, and the edge's FIB
	// and hosp's probes checked after it.
	Evidence []string `json:"evidence,omitempty"`
}

// FinalOutcome is how the rehearsed run ended in the end: after the retry
// when there was one (Options.Retry), else Outcome.
func (res *Result) FinalOutcome() engine.Outcome {
	if res.Retry != nil {
		return res.Retry.Outcome
	}
	return res.Outcome
}

// FinalAtSource is the batches the run left at the source in the end:
// after the retry when there was one, else AtSourceBatches.
func (res *Result) FinalAtSource() []int {
	if res.Retry != nil {
		return res.Retry.AtSourceBatches
	}
	return res.AtSourceBatches
}

type rehearsal struct {
	began time.Time // when Run started
	o     Options
	pl    *plan.Plan
	l     *lab.Lab
	dir   string // daemon state dir and socket inside the lab dir
	sock  string
	ld    *labDaemon // how the daemon was started (for restarts and teardown)
	cl    *client.Client
	res   *Result
	out   io.Writer
	// faults by batch, resolved
	at     map[int][]Fault
	target string // lab site of the runbook's target
	source string // lab site of the runbook's source
	// logLines is how many lines of daemon.log checkDaemonLog has checked.
	logLines int

	// What watch keeps across the run and its retry: the last event
	// printed, the batches whose faults were injected, the faults in
	// place (to undo), and the edge FIB watches of target-down faults.
	since    int
	injected map[int]bool
	placed   []*placed
	watches  []*fibWatch
	// notReady counts the run's pauses "not-ready" per batch.
	notReady map[int]int
	// reportIn is what the step's report was built from (the run's
	// journal, the snapshots): its evidence record holds the same report.
	// nil until the run ended, or when the journal could not be read.
	reportIn *ReportInput
}

// placed is a fault the rehearsal put on the lab, and how to take it away.
type placed struct {
	batch  int
	f      Fault
	in     Injection
	rec    int  // its index in Result.Injected
	undone bool // taken away again (or cannot be: daemon-kill, bgp-reset)
}

// Step is one runbook of a chained drill (drain out, then back; fail
// over, then back) with the faults injected while it runs.
type Step struct {
	Runbook string
	Faults  []Fault
	// Retry as Options.Retry, for this step.
	Retry bool
}

// Run rehearses o.Runbook. The error is for a rehearsal that could not be
// carried out; a run whose outcome differs from the policy's promise comes
// back as a Result with OK false.
func Run(ctx context.Context, o Options) (*Result, error) {
	res, err := RunChain(ctx, o, []Step{{Runbook: o.Runbook, Faults: o.Faults, Retry: o.Retry}})
	if len(res) == 0 {
		return nil, err
	}
	return res[0], err
}

// RunChain rehearses steps one after the other in one lab built for all
// of them and against one daemon: each run starts where the one before
// left the routes (the daemon's adoption of a finished run), and each
// step's outcome is checked against its own policy. o.Runbook, o.Faults
// and o.Retry are ignored; o.MeasureRollback applies to the last step.
// With a report writer, each step's report goes into its own directory
// under o.ReportDir and an index.md there lists them.
func RunChain(ctx context.Context, o Options, steps []Step) ([]*Result, error) {
	start := time.Now()
	if len(steps) == 0 {
		return nil, errors.New("rehearse: no runbook")
	}
	if o.Lab == "" {
		o.Lab = "rehearse"
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 5 * time.Second
	}
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the cutover binary: %w", err)
		}
		o.Binary = exe
	}
	plans := make([]*plan.Plan, len(steps))
	ats := make([]map[int][]Fault, len(steps))
	var books []lab.Book
	for i, st := range steps {
		pl, _, err := plan.Load(st.Runbook)
		if err != nil {
			return nil, err
		}
		plans[i] = pl
		books = append(books, lab.Book{Runbook: pl.Runbook, Inventory: pl.Inventory})
		var names []string
		for _, b := range pl.Batches {
			names = append(names, b.Name)
		}
		ats[i] = map[int][]Fault{}
		for _, f := range st.Faults {
			if _, err := LookupKind(f.Kind); err != nil {
				return nil, fmt.Errorf("%s: fault %s: %w", st.Runbook, f, err)
			}
			k, err := f.batchIndex(names)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", st.Runbook, err)
			}
			ats[i][k] = append(ats[i][k], f)
		}
	}
	cfg, err := lab.ConfigFor(o.Lab, o.Fallback, books...)
	if err != nil {
		return nil, err
	}
	if o.VMs > 0 && o.VMs < len(cfg.VMs) {
		cfg.VMs = cfg.VMs[:o.VMs]
	}
	cfg.Responder = o.Binary
	cfg.EdgeFlavors = o.EdgeFlavors
	base := o
	r := &rehearsal{o: o, out: o.Out, began: start, res: &Result{Runbook: steps[0].Runbook, Lab: o.Lab}}
	if err := r.up(ctx, cfg); err != nil {
		r.teardown()
		return nil, err
	}
	// Each step that ran to its end leaves a record. They are written
	// last, after the teardown (deferred after this, so run before it):
	// what the daemon logged as it stopped is part of the last step's
	// verdict.
	var finished []*stepRecord
	defer func() { r.writeRecords(finished) }()
	if !o.Keep {
		defer r.teardown()
	}
	labUp := r.res.LabUp
	// What bringing the lab and the daemon up checked (the confined
	// daemon's capabilities) belongs to the first step's result.
	upChecked, upProblems := r.res.Checked, r.res.Problems
	var results []*Result
	for i, st := range steps {
		stepStart := time.Now()
		if i > 0 {
			labUp = 0
		}
		so := base
		so.Runbook, so.Faults, so.Retry = st.Runbook, st.Faults, st.Retry
		so.MeasureRollback = base.MeasureRollback && i == len(steps)-1
		if len(steps) > 1 && base.ReportDir != "" {
			so.ReportDir = filepath.Join(base.ReportDir, fmt.Sprintf("%d-%s", i+1, plans[i].Runbook.Name))
		}
		if err := r.beginStep(so, plans[i], ats[i], labUp, stepStart); err != nil {
			return results, err
		}
		if i == 0 {
			r.res.Checked, r.res.Problems = upChecked, upProblems
		}
		if len(steps) > 1 {
			r.printf("step %d of %d: %s (%s → %s)", i+1, len(steps), plans[i].Runbook.Name,
				plans[i].Runbook.Move.From, plans[i].Runbook.Move.To)
		}
		err := r.run(ctx)
		r.res.Took = time.Since(stepStart)
		began := stepStart
		if i == 0 {
			r.res.Took = time.Since(start)
			began = start
		}
		results = append(results, r.res)
		if err != nil {
			return results, err
		}
		finished = append(finished, &stepRecord{o: so, pl: plans[i], began: began, res: r.res, in: r.reportIn})
		if len(steps) > 1 && !r.res.OK {
			r.printf("step %d of %d did not end as promised: the chain stops here", i+1, len(steps))
			break
		}
		if i < len(steps)-1 {
			// The next step starts with every VM as it should be: the
			// faults of this one are taken away (those not undone yet).
			for _, p := range r.placed {
				if line, ok := r.undo(ctx, p, "before the next step"); ok {
					r.res.Checked = append(r.res.Checked, line)
				}
			}
		}
		if i < len(steps)-1 && r.res.FinalOutcome() != engine.OutcomeAllMoved {
			// The next runbook starts where this one ends: with VMs left
			// at the source its baseline would move them before a gate,
			// which the daemon refuses.
			r.printf("step %d of %d left VMs at the source (%s): the next step starts where this one ends, so the chain stops here (rehearse with --retry)",
				i+1, len(steps), r.res.FinalOutcome())
			break
		}
	}
	if len(steps) > 1 && base.ReportDir != "" && base.Report != nil {
		if err := writeChainIndex(base.ReportDir, steps, results); err != nil {
			results[len(results)-1].Problems = append(results[len(results)-1].Problems, "write the chain's index: "+err.Error())
			results[len(results)-1].OK = false
		}
	}
	return results, nil
}

// beginStep makes r rehearse pl next: the per-run state starts afresh,
// the lab and the daemon stay.
func (r *rehearsal) beginStep(o Options, pl *plan.Plan, at map[int][]Fault, labUp time.Duration, began time.Time) error {
	r.o, r.pl, r.at, r.began = o, pl, at, began
	r.res = &Result{Runbook: o.Runbook, Lab: o.Lab, VMs: len(r.l.Topology().VMs), LabUp: labUp}
	// r.since stays: the daemon's events go on from one run to the next.
	r.injected, r.placed, r.watches, r.notReady, r.reportIn = nil, nil, nil, nil, nil
	topo := r.l.Topology()
	var ok bool
	if r.source, ok = topo.SiteNode(pl.Runbook.Move.From); !ok {
		return fmt.Errorf("runbook %s: site %s is not in the lab", pl.Runbook.Name, pl.Runbook.Move.From)
	}
	if r.target, ok = topo.SiteNode(pl.Runbook.Move.To); !ok {
		return fmt.Errorf("runbook %s: site %s is not in the lab", pl.Runbook.Name, pl.Runbook.Move.To)
	}
	return nil
}

func (r *rehearsal) printf(format string, a ...any) {
	fmt.Fprintf(r.out, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, a...))
}

func (r *rehearsal) up(ctx context.Context, cfg lab.Config) error {
	start := time.Now()
	if err := lab.Down(ctx, r.o.Lab, r.o.Log); err != nil {
		return fmt.Errorf("clean up an earlier lab %s: %w", r.o.Lab, err)
	}
	topo, err := lab.NewTopology(cfg)
	if err != nil {
		return err
	}
	var sites []string
	for _, s := range topo.Sites {
		if s.Node != s.Name {
			sites = append(sites, s.Name+" (node "+s.Node+")")
		} else {
			sites = append(sites, s.Name)
		}
	}
	var edges []string
	for _, e := range topo.Edges {
		edges = append(edges, e.Node+" ("+e.FlavorOf()+")")
	}
	r.printf("lab %s: bringing up %s, sites %s, the client network hosp and the controller's ctl, with %d VM addresses at every site",
		r.o.Lab, strings.Join(edges, ", "), strings.Join(sites, ", "), len(cfg.VMs))
	l, err := lab.Up(ctx, cfg, r.o.Log)
	if err != nil {
		return err
	}
	r.l = l
	r.res.LabUp = time.Since(start)
	r.printf("lab up in %s", r.res.LabUp.Round(time.Millisecond))
	r.dir = filepath.Join(l.Dir(), "daemon")
	r.sock = filepath.Join(l.Dir(), "cutover.sock")
	return r.startDaemon(ctx)
}

// DaemonEnv marks a process started by a rehearsal as the daemon, so that
// a test binary knows to serve (see serve.RunIfChild in cutover/serve).
const DaemonEnv = "CUTOVER_REHEARSE_DAEMON"

func (r *rehearsal) startDaemon(ctx context.Context) error {
	if r.ld == nil {
		bin := r.o.Binary
		var prefix []string
		if c := r.o.Confine; c != nil {
			var err error
			if r.sock, bin, err = c.prepare(r.l.Dir(), r.dir, bin); err != nil {
				return fmt.Errorf("confine the daemon: %w", err)
			}
			prefix = c.setprivArgs()
		}
		// SSL_CERT_FILE: the daemon's https probes trust the lab's CA, as
		// a real one trusts the hospitals' own.
		r.ld = &labDaemon{Socket: r.sock, Env: []string{DaemonEnv + "=1", "SSL_CERT_FILE=" + r.l.CAFile()}, Argv: append(prefix, bin, "serve",
			"--state-dir", r.dir, "--socket", r.sock,
			"--dataplane-netns", r.l.Namespace(lab.NodeEdge),
			"--probe-netns", r.l.Namespace(lab.NodeHosp),
			"--drain-timeout", r.o.DrainTimeout.String(),
			// The lab rehearses at any time of day; the run says so in
			// its log, and the night itself runs without this flag.
			"--ignore-window",
			// A rehearsal is how a runbook earns require_rehearsal.
			"--rehearsing",
			"--log-format", "json", "--log-level", "info")}
	}
	if err := startLabDaemon(ctx, r.l, r.ld); err != nil {
		return err
	}
	r.cl = client.New(r.sock)
	r.printf("daemon up in %s (pid %d)", r.l.Namespace(lab.NodeCtl), r.ld.PID)
	if c := r.o.Confine; c != nil {
		line, err := c.check(r.ld.PID)
		if err != nil {
			r.res.Problems = append(r.res.Problems, "confined daemon: "+err.Error())
		} else {
			r.res.Checked = append(r.res.Checked, line)
		}
	}
	return nil
}

func (r *rehearsal) teardown() {
	stopLabDaemon(r.ld)
	if r.logLines > 0 {
		r.checkDaemonLog() // what the daemon wrote as it stopped
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := lab.Down(ctx, r.o.Lab, r.o.Log); err != nil {
		r.printf("lab down: %v", err)
	}
}

// readiness is the runbook's readiness policy: what the daemon does with a
// batch whose VMs do not answer at the target before the move.
func (r *rehearsal) readiness() engine.ReadyPolicy {
	rb := r.pl.Runbook
	if !rb.Dataplane.Enabled || rb.Readiness == "" {
		return engine.ReadyOff
	}
	return rb.Readiness
}

// expected is what the policy promises for the injected faults.
//
// A fault that fails the readiness check (target-down) holds its batch at
// the source under readiness skip; under readiness pause the run pauses
// before the batch, the rehearsal's person starts the VMs again and
// resumes, and the batch moves; with the check off the batch is moved
// and its gates decide, as for a fault that fails the gates (vm-down,
// slow-vm slower than the probe timeout, link-down).
func (r *rehearsal) expected() Outcome {
	n := len(r.pl.Batches)
	probeTimeout := time.Second
	for _, g := range r.pl.Runbook.Gates {
		if g.Kind == runbook.GateProbe && g.Timeout > 0 {
			probeTimeout = g.Timeout
		}
	}
	ready := r.readiness()
	failing := -1
	var failed, held []int
	for i := range n {
		notReady, fails := false, false
		for _, f := range r.at[i] {
			if f.failsReady() && ready != engine.ReadyOff {
				// skip: held, never gated; pause: undone before the move.
				notReady = notReady || ready == engine.ReadySkip
				continue
			}
			fails = fails || r.failsGates(i, f, probeTimeout)
		}
		switch {
		case notReady:
			held = append(held, i)
		case fails:
			failed = append(failed, i)
			if failing < 0 {
				failing = i
			}
		}
	}
	o := Outcome{Phase: engine.PhaseDone}
	if r.pl.Runbook.FailurePolicy == engine.RollbackAll && failing >= 0 {
		o.Phase = engine.PhaseAborted
		for i := range n {
			switch {
			case i > failing:
				o.Pending = append(o.Pending, i)
			case slices.Contains(held, i):
				o.Held = append(o.Held, i) // never moved: nothing to roll back
			default:
				o.RolledBack = append(o.RolledBack, i)
			}
		}
		return o
	}
	// rollback-batch, and pause (resolved by the rehearsal as a person
	// would: roll the batch back, resume).
	for i := range n {
		switch {
		case slices.Contains(held, i):
			o.Held = append(o.Held, i)
		case slices.Contains(failed, i):
			o.RolledBack = append(o.RolledBack, i)
		default:
			o.Committed = append(o.Committed, i)
		}
	}
	return o
}

// failsGates reports whether fault f in batch i makes the batch fail its
// gates. A fault on some of the batch's VMs (vm-down, slow-vm, http-5xx)
// fails a probe gate only when it leaves fewer healthy VMs than the gate's
// min_healthy or more failures than its max_failures (a DR runbook that
// tolerates 5% lets a 1% failure through), and http-5xx fails any
// prometheus gate (it asks for the error rate). Other faults (link-down)
// fail the gates as their kind says.
func (r *rehearsal) failsGates(i int, f Fault, probeTimeout time.Duration) bool {
	if !f.failsGate(probeTimeout) {
		return false
	}
	if f.Kind != VMDown && f.Kind != SlowVM && f.Kind != HTTP5xx {
		return true
	}
	// The probe gate counts addresses: a VM with two is two targets.
	hit, _ := r.pick(i, f)
	probed := 0
	for _, vm := range r.pl.Batches[i].VMs {
		if vm.Probe.Kind != runbook.ProbeNone {
			probed += len(vm.Prefixes)
		}
	}
	for _, g := range r.pl.Runbook.Gates {
		switch {
		case g.Kind == runbook.GatePrometheus && f.Kind == HTTP5xx:
			return true
		case g.Kind != runbook.GateProbe || probed == 0:
		case float64(probed-len(hit))/float64(probed) < float64(g.MinHealthy):
			return true
		case g.MaxFailures >= 0 && len(hit) > g.MaxFailures:
			return true
		}
	}
	return false
}

func outcomeOf(s engine.RunState) Outcome {
	o := Outcome{Phase: s.Phase}
	for i, b := range s.Batches {
		switch b.Phase {
		case engine.BatchCommitted:
			o.Committed = append(o.Committed, i)
		case engine.BatchRolledBack:
			o.RolledBack = append(o.RolledBack, i)
		case engine.BatchHeld:
			o.Held = append(o.Held, i)
		default:
			o.Pending = append(o.Pending, i)
		}
	}
	return o
}

func (r *rehearsal) run(ctx context.Context) error {
	defer r.stopWatches()
	r.res.Expected = r.expected()
	var snaps []Snapshot
	snaps = append(snaps, r.snapshot(ctx, "before")...)
	// Faults that must be in place before their batch is checked for
	// readiness, and the edge's FIB watched for their batches from now on.
	for _, i := range slices.Sorted(maps.Keys(r.at)) {
		for _, f := range r.at[i] {
			if !f.kind().Early {
				continue
			}
			p, err := r.inject(ctx, i, f, "pending", nil)
			if err != nil {
				return err
			}
			if f.failsReady() {
				r.watches = append(r.watches, r.watchFIB(ctx, p))
			}
		}
	}
	abs, err := filepath.Abs(r.o.Runbook)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := r.cl.Run(ctx, abs, true); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	r.printf("run %s started (go/no-go points answered: --yes)", r.pl.Runbook.Name)
	if w := r.pl.Runbook.Window; w != nil {
		r.printf("change window %s: ignored in the lab, which rehearses at any hour (the daemon runs with --ignore-window)", w)
	}
	st, err := r.watch(ctx, true)
	r.stopWatches() // before a retry moves the held batches
	if err != nil {
		return err
	}
	r.res.RunTook = time.Since(start)
	r.res.Actual = outcomeOf(st)
	r.res.Outcome = st.Outcome()
	r.res.AtSourceVMs, r.res.AtSourceBatches = st.AtSource()
	r.printf("run %s in %s: %s (%s)", st.Phase, r.res.RunTook.Round(time.Millisecond), st.Result, r.res.Outcome)
	if !r.res.Actual.equal(r.res.Expected) {
		r.res.Problems = append(r.res.Problems, fmt.Sprintf("outcome %s; the policy %s promised %s",
			r.res.Actual, r.policy(), r.res.Expected))
	}
	r.checkNotReady(st)
	r.verify(ctx, st)
	if r.o.Retry {
		if err := r.retry(ctx, st); err != nil {
			return err
		}
	}
	snaps = append(snaps, r.snapshot(ctx, "after")...)
	if r.o.MeasureRollback {
		r.measureRollback(ctx)
	}
	r.res.DaemonPeakRSS = r.ld.peakRSS()
	r.checkDaemonLog()
	r.reportIn = r.reportInput(ctx, snaps)
	if r.o.Report != nil && r.reportIn != nil {
		r.writeReport(*r.reportIn)
	}
	r.res.OK = len(r.res.Problems) == 0
	return nil
}

// policy names the runbook's failure policy, and its readiness policy
// when a fault depends on it.
func (r *rehearsal) policy() string {
	p := string(r.pl.Runbook.FailurePolicy)
	for _, fs := range r.at {
		for _, f := range fs {
			if f.failsReady() {
				return p + " with readiness " + string(r.readiness())
			}
		}
	}
	return p
}

// checkNotReady checks that, under readiness pause, the run paused
// "not-ready" before each batch it reached whose VMs a fault stopped at
// the target.
func (r *rehearsal) checkNotReady(st engine.RunState) {
	if r.readiness() != engine.ReadyPause {
		return
	}
	for _, i := range slices.Sorted(maps.Keys(r.at)) {
		if i >= len(st.Batches) || st.Batches[i].Phase == engine.BatchPending {
			continue // not reached (the run aborted before it)
		}
		for _, f := range r.at[i] {
			if !f.failsReady() {
				continue
			}
			if r.notReady[i] == 0 {
				r.res.Problems = append(r.res.Problems, fmt.Sprintf("%s: the run never paused \"not-ready\" before batch %d although readiness is pause and its VMs did not answer at %s", f.Kind, i, r.target))
			} else {
				r.res.Checked = append(r.res.Checked, fmt.Sprintf("%s: the run paused \"not-ready\" before batch %d; the operator started the VMs at %s again and resumed; the batch was then moved and %s",
					f, i, r.target, st.Batches[i].Phase))
			}
			break
		}
	}
}

// retry retries the batches the run left at the source, with every fault
// undone, follows the run to its end again and checks that it moved every
// VM.
func (r *rehearsal) retry(ctx context.Context, st engine.RunState) error {
	switch o := st.Outcome(); o {
	case engine.OutcomePartial:
	case engine.OutcomeAllMoved:
		r.printf("retry: nothing to retry, every VM moved")
		return nil
	case engine.OutcomeAborted:
		r.printf("retry: the run was aborted (%s): a retry is for a run that finished with VMs at the source; not retried", st.Result)
		return nil
	default:
		r.printf("retry: the run ended %s (%q): nothing to retry", st.Phase, o)
		return nil
	}
	rt := &Retried{}
	r.res.Retry = rt
	_, rt.Batches = st.AtSource()
	for i := range st.Batches {
		rt.Expected.Committed = append(rt.Expected.Committed, i)
	}
	rt.Expected.Phase = engine.PhaseDone
	for _, p := range r.placed {
		if line, ok := r.undo(ctx, p, "before the retry"); ok {
			rt.Evidence = append(rt.Evidence, line)
		}
	}
	start := time.Now()
	if err := r.cl.Retry(ctx, nil); err != nil {
		r.res.Problems = append(r.res.Problems, "retry: "+err.Error())
		return nil
	}
	r.printf("retry: batches %v back to pending with every fault undone; following the run again (no new faults)", rt.Batches)
	st, err := r.watch(ctx, false)
	if err != nil {
		return fmt.Errorf("after the retry: %w", err)
	}
	rt.Took = time.Since(start)
	rt.Actual = outcomeOf(st)
	rt.Outcome = st.Outcome()
	rt.AtSourceVMs, rt.AtSourceBatches = st.AtSource()
	r.printf("run %s again in %s after the retry: %s (%s)", st.Phase, rt.Took.Round(time.Millisecond), st.Result, rt.Outcome)
	if !rt.Actual.equal(rt.Expected) {
		r.res.Problems = append(r.res.Problems, fmt.Sprintf("after the retry: outcome %s (%s); with the faults undone every batch must move: %s",
			rt.Actual, rt.Outcome, rt.Expected))
	}
	rt.Evidence = append(rt.Evidence, r.check(ctx, st)...)
	return nil
}

// watch follows the run, injects the faults at their batches (with
// faults) and plays the person at pauses, until the run ends.
func (r *rehearsal) watch(ctx context.Context, faults bool) (engine.RunState, error) {
	if r.injected == nil {
		r.injected = map[int]bool{}
	}
	deadline := time.Now().Add(30 * time.Minute)
	for {
		st, err := r.cl.Status(ctx, r.since)
		if err != nil {
			return engine.RunState{}, err
		}
		for _, ev := range st.Events {
			r.since = ev.Seq
			b := "run"
			if ev.Batch >= 0 {
				b = fmt.Sprintf("b%02d", ev.Batch)
			}
			fmt.Fprintf(r.out, "%s  %-4s %-9s %s\n", ev.Time.Local().Format("15:04:05.000"), b, ev.Op, ev.Msg)
		}
		s := st.State
		for i, b := range s.Batches {
			if !faults || r.injected[i] || (b.Phase != engine.BatchGating && b.Phase != engine.BatchAnnouncing) {
				continue
			}
			r.injected[i] = true
			for _, f := range r.at[i] {
				if f.kind().Early {
					continue
				}
				if _, err := r.inject(ctx, i, f, phaseAt(b), r.withdrawn(s)); err != nil {
					return s, err
				}
			}
		}
		for _, p := range r.placed {
			if p.undone || !p.f.kind().UndoWhenDecided || p.batch >= len(s.Batches) {
				continue
			}
			if ph := s.Batches[p.batch].Phase; ph == engine.BatchCommitted || ph.AtSource() {
				r.undo(ctx, p, fmt.Sprintf("after batch %d was decided (%s)", p.batch, ph))
			}
		}
		if !s.Active() {
			return s, nil
		}
		if s.Phase == engine.PhasePaused {
			if err := r.person(ctx, s); err != nil {
				return s, err
			}
		}
		if time.Now().After(deadline) {
			return s, errors.New("the run did not end within 30 minutes")
		}
		every := 100 * time.Millisecond
		if faults && r.armed(s) {
			every = 20 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-time.After(every):
		}
	}
}

// armed reports whether a fault that must land right after its batch's
// readiness check (vm-down, slow-vm) waits for a batch that is next: the
// batches before it have started. watch then polls the daemon every 20 ms,
// so that the fault is in place while the batch is announcing, before its
// gates' first round.
func (r *rehearsal) armed(s engine.RunState) bool {
	for i, fs := range r.at {
		if r.injected[i] || i >= len(s.Batches) || s.Batches[i].Phase != engine.BatchPending {
			continue
		}
		if !slices.ContainsFunc(fs, func(f Fault) bool { return f.kind().AfterReady }) {
			continue
		}
		next := true
		for _, b := range s.Batches[:i] {
			if b.Phase == engine.BatchPending {
				next = false
				break
			}
		}
		if next {
			return true
		}
	}
	return false
}

// phaseAt says where batch b stood when a fault was injected: its phase,
// and the gates' last round while it is gated.
func phaseAt(b engine.BatchState) string {
	at := string(b.Phase)
	for _, v := range b.Verdicts {
		if v.Pending && v.Round > 0 {
			held := "failed"
			if v.RoundOK {
				held = "held"
			}
			at += fmt.Sprintf(", %s round %d %s", v.Gate, v.Round, held)
		}
	}
	return at
}

// person answers a pause the way the night shift would in a rehearsal.
func (r *rehearsal) person(ctx context.Context, s engine.RunState) error {
	switch {
	case s.Pause == "interrupted":
		r.printf("operator: the daemon restarted; resume")
		return r.cl.Resume(ctx)
	case s.Pause == "gate-failed":
		for i, b := range s.Batches {
			if b.Phase == engine.BatchGating {
				r.printf("operator: batch %d failed its gates under the pause policy; roll it back and resume", i)
				if _, err := r.cl.Rollback(ctx, engine.OnlyBatch(i)); err != nil {
					return err
				}
			}
		}
		return r.cl.Resume(ctx)
	case s.Pause == "not-ready":
		return r.notReadyPause(ctx, s)
	case strings.HasPrefix(s.Pause, "error: "):
		// The daemon stalled on an error it cannot decide about (the
		// journal, BGP or nft would not take a change): a person pulls the
		// brake rather than leave the run paused.
		r.res.Problems = append(r.res.Problems, "the run stalled: "+strings.TrimPrefix(s.Pause, "error: "))
		r.printf("operator: the run stalled (%s); roll everything back", strings.TrimPrefix(s.Pause, "error: "))
		if _, err := r.cl.Rollback(ctx, engine.AllBatches()); err != nil {
			return fmt.Errorf("the run stalled (%s) and rollback --all failed: %w", strings.TrimPrefix(s.Pause, "error: "), err)
		}
		return nil
	case strings.HasPrefix(s.Pause, "rollback by"):
		return r.cl.Resume(ctx)
	case s.Confirm != "" && s.ConfirmGoAt == s.Confirm && len(s.ConfirmGo) > 0:
		// Four eyes: the run's go (--yes) was one operator's; another
		// person of the night says go, as root's client may answer for.
		cl := client.New(r.cl.Socket)
		cl.Operator = fmt.Sprintf("rehearsal operator %d", len(s.ConfirmGo)+1)
		r.printf("operator: %s says go at %q too (%d different operators)", cl.Operator, s.Confirm, s.ConfirmOperators)
		return cl.Confirm(ctx, s.Confirm, true)
	case s.Confirm != "":
		return r.cl.Confirm(ctx, s.Confirm, true)
	}
	return nil
}

// notReadyPause answers the run's pause before a batch whose VMs did not
// answer at the target (readiness pause): the operator starts the VMs a
// target-down fault stopped there again and resumes, which checks the
// batch again and moves it. A pause no fault explains cannot be answered:
// the operator rolls everything back.
func (r *rehearsal) notReadyPause(ctx context.Context, s engine.RunState) error {
	batch := -1
	for i, b := range s.Batches {
		if b.Phase == engine.BatchPending {
			batch = i
			break
		}
	}
	if r.notReady == nil {
		r.notReady = map[int]int{}
	}
	r.notReady[batch]++
	var fix []*placed
	for _, p := range r.placed {
		if p.batch == batch && !p.undone && p.f.failsReady() {
			fix = append(fix, p)
		}
	}
	if len(fix) == 0 {
		r.res.Problems = append(r.res.Problems, fmt.Sprintf("the run paused \"not-ready\" before batch %d, whose VMs no fault of the rehearsal stopped: they do not answer at %s", batch, r.target))
		r.printf("operator: batch %d is not ready at %s and no fault explains it; roll everything back", batch, r.target)
		_, err := r.cl.Rollback(ctx, engine.AllBatches())
		return err
	}
	// The edge must not have held the batch's prefixes via the target
	// while its VMs were down there: the watch ends before they come back.
	for _, w := range r.watches {
		if w.p.batch == batch {
			r.endWatch(w)
		}
	}
	r.printf("operator: batch %d is not ready at %s under readiness pause; start its VMs there again and resume (the readiness check runs again, then the batch moves)", batch, r.target)
	for _, p := range fix {
		r.undo(ctx, p, fmt.Sprintf("while the run paused not-ready before batch %d", batch))
	}
	return r.cl.Resume(ctx)
}

// injection is where the rehearsal puts fault f: the target site, and
// the daemon it started.
func (r *rehearsal) injection(f Fault) Injection {
	return Injection{Lab: r.l, Site: r.target, Delay: f.Delay, daemon: r.ld}
}

// inject puts fault f on batch i. An edge that drops routes while the
// daemon is dead is a problem of the outcome, not of the rehearsal.
func (r *rehearsal) inject(ctx context.Context, i int, f Fault, phase string, withdrawn map[netip.Prefix]bool) (*placed, error) {
	k := f.kind()
	rec := Injected{Fault: f.String(), Batch: i, At: phase, Time: time.Now()}
	in := r.injection(f)
	in.Withdrawn = withdrawn
	if k.NeedsVMs {
		in.VMs, rec.VMs = r.pick(i, f)
	}
	ev, err := k.Inject(ctx, in)
	rec.Evidence = ev
	r.res.Injected = append(r.res.Injected, rec)
	p := &placed{batch: i, f: f, in: in, rec: len(r.res.Injected) - 1, undone: !k.undoable}
	var dropped *RoutesDroppedError
	switch {
	case errors.As(err, &dropped):
		r.res.Problems = append(r.res.Problems, dropped.Error())
	case err != nil:
		return nil, fmt.Errorf("inject %s: %w", f, err)
	}
	r.placed = append(r.placed, p)
	msg := fmt.Sprintf("fault %s: %s while batch %d was %s", f, k.Describe(in), i, phase)
	if len(rec.VMs) > 0 {
		msg += ": " + strings.Join(rec.VMs, " ")
	}
	if len(ev) > 0 {
		msg += "; " + strings.Join(ev, "; ")
	}
	r.printf("%s", msg)
	return p, nil
}

// withdrawn is the prefixes of the batches s has rolled back or is rolling
// back: the daemon withdrew (or is withdrawing) their routes.
func (r *rehearsal) withdrawn(s engine.RunState) map[netip.Prefix]bool {
	set := map[netip.Prefix]bool{}
	for i, b := range s.Batches {
		if i >= len(r.pl.Batches) || (b.Phase != engine.BatchRolledBack && b.Phase != engine.BatchRollingBack) {
			continue
		}
		for _, vm := range r.pl.Batches[i].VMs {
			for _, p := range vm.Prefixes {
				set[p] = true
			}
		}
	}
	return set
}

// undo takes fault p away again (when, such as "after batch 2 was
// decided", says why now) and returns the line it printed; false when
// there was nothing to undo or it failed (a problem then).
func (r *rehearsal) undo(ctx context.Context, p *placed, when string) (string, bool) {
	if p.undone {
		return "", false
	}
	p.undone = true
	k := p.f.kind()
	in := p.in
	in.Undo = true
	if _, err := k.Inject(ctx, in); err != nil {
		r.res.Problems = append(r.res.Problems, fmt.Sprintf("undo %s: %v", p.f, err))
		return "", false
	}
	line := fmt.Sprintf("fault %s: %s %s", p.f, k.Describe(in), when)
	r.printf("%s", line)
	return line, true
}

// pick chooses the VMs a vm-down, target-down, slow-vm or http-5xx fault
// hits: a share (or count) of batch i's probed VMs, spread over the batch;
// for http-5xx only VMs probed over HTTP(S), whose probes see the status.
func (r *rehearsal) pick(i int, f Fault) ([]netip.Addr, []string) {
	var probed []*runbook.VM
	for _, vm := range r.pl.Batches[i].VMs {
		httpProbed := vm.Probe.Kind == runbook.ProbeHTTP || vm.Probe.Kind == runbook.ProbeHTTPS
		if vm.Probe.Kind != runbook.ProbeNone && (f.Kind != HTTP5xx || httpProbed) {
			probed = append(probed, vm)
		}
	}
	n := f.Count
	if n == 0 {
		n = int(float64(len(probed))*f.Share + 0.5)
	}
	n = min(max(n, 1), len(probed))
	var addrs []netip.Addr
	var names []string
	for k := range n {
		vm := probed[k*len(probed)/n]
		names = append(names, vm.Name)
		for _, p := range vm.Prefixes {
			addrs = append(addrs, p.Addr())
		}
	}
	return addrs, names
}

// verify checks the edge's FIB and what hosp reaches against the outcome
// (Result.Checked, Result.Problems).
func (r *rehearsal) verify(ctx context.Context, st engine.RunState) {
	r.res.Checked = append(r.res.Checked, r.check(ctx, st)...)
}

// check checks the edge's FIB and what hosp reaches against st and returns
// what it checked; what disagrees goes to Result.Problems. The VMs of
// faults still in place stay out of hosp's probes.
func (r *rehearsal) check(ctx context.Context, st engine.RunState) []string {
	var lines []string
	for _, e := range r.l.Topology().EdgeNodes() {
		l, ok := r.checkEdge(ctx, st, e)
		if !ok {
			return lines
		}
		lines = append(lines, l...)
	}
	return lines
}

// checkEdge checks one edge's FIB, and from the first edge on what hosp
// reaches; ok is false when the FIB could not be read.
func (r *rehearsal) checkEdge(ctx context.Context, st engine.RunState, edge string) (_ []string, ok bool) {
	topo := r.l.Topology()
	tgt := topo.SiteNextHop[r.target]
	fib, err := r.l.EdgeFIBOf(ctx, edge)
	if err != nil {
		r.res.Problems = append(r.res.Problems, "read the FIB of "+edge+": "+err.Error())
		return nil, false
	}
	inLab := map[netip.Prefix]bool{}
	for _, p := range topo.VMs {
		inLab[p] = true
	}
	faulted := map[string]bool{}
	for _, p := range r.placed {
		if !p.undone && p.rec < len(r.res.Injected) {
			for _, n := range r.res.Injected[p.rec].VMs {
				faulted[n] = true
			}
		}
	}
	var wrong []string
	atTarget, atSource := 0, 0
	var sampleMoved, sampleStay []netip.Addr
	for i, b := range r.pl.Batches {
		moved := st.Batches[i].Phase == engine.BatchCommitted
		for _, vm := range b.VMs {
			for _, p := range vm.Prefixes {
				gw, ok := fib[p]
				isTarget := ok && (gw == tgt.V4 || gw == tgt.V6)
				if moved != isTarget {
					if len(wrong) < 5 {
						wrong = append(wrong, fmt.Sprintf("%s %s (batch %d %s): edge route %v via %s", vm.Name, p, i, st.Batches[i].Phase, ok, gw))
					}
					continue
				}
				if moved {
					atTarget++
				} else {
					atSource++
				}
				if inLab[p] && !faulted[vm.Name] {
					if moved {
						sampleMoved = append(sampleMoved, p.Addr())
					} else {
						sampleStay = append(sampleStay, p.Addr())
					}
				}
			}
		}
	}
	if len(wrong) > 0 {
		r.res.Problems = append(r.res.Problems, edge+" FIB disagrees with the journal: "+strings.Join(wrong, "; "))
	}
	lines := []string{fmt.Sprintf("%s FIB: %d VM prefixes via %s, %d not (at %s), as the journal says",
		edge, atTarget, r.target, atSource, r.source)}
	if edge != lab.NodeEdge {
		return lines, true // hosp's traffic enters at the first edge
	}
	lines = append(lines, r.checkReach(ctx, sampleMoved, r.target)...)
	lines = append(lines, r.checkReach(ctx, sampleStay, r.source)...)
	return lines, true
}

// checkReach fetches addrs from hosp (all of them with ReachAll, else 50
// spread over them), expects the site's name and returns the line of what
// it checked; what failed goes to Result.Problems.
func (r *rehearsal) checkReach(ctx context.Context, addrs []netip.Addr, site string) []string {
	if len(addrs) == 0 {
		return nil
	}
	n := len(addrs)
	if !r.o.ReachAll {
		n = min(50, n)
	}
	var (
		mu  sync.Mutex
		ok  int
		bad []string
		wg  sync.WaitGroup
		sem = make(chan struct{}, 32)
	)
	for k := range n {
		a := addrs[k*len(addrs)/n]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			body, err := r.l.HTTPGet(cctx, lab.NodeHosp, a, lab.HTTPPort)
			cancel()
			got := strings.TrimSpace(body)
			mu.Lock()
			defer mu.Unlock()
			if err == nil && got == site {
				ok++
			} else if len(bad) < 5 {
				bad = append(bad, fmt.Sprintf("%s: %q %v", a, got, err))
			}
		}()
	}
	wg.Wait()
	if ok < n {
		r.res.Problems = append(r.res.Problems, fmt.Sprintf("hosp reached %d of %d VMs at %s: %s", ok, n, site, strings.Join(bad, "; ")))
	}
	what := "sampled VMs"
	if n == len(addrs) {
		what = "VMs (all)"
	}
	return []string{fmt.Sprintf("hosp → %d %s answered %q: %d of %d", n, what, site, ok, n)}
}

// measureRollback rolls every batch back and measures, from the command,
// how long the edge's FIB takes to hold no VM route via the target: each
// host route via the target goes (or, with announce_source, goes via the
// source). The FIB is followed by netlink events, as the bench's
// reference is, not by dumping 50,000 routes over and over while the edge
// installs them.
func (r *rehearsal) measureRollback(ctx context.Context) {
	topo := r.l.Topology()
	tgt, src := topo.SiteNextHop[r.target], topo.SiteNextHop[r.source]
	moved, err := hostRoutesSet(ctx, r.l, tgt)
	if err != nil {
		r.res.Problems = append(r.res.Problems, "rollback --all: "+err.Error())
		return
	}
	want := make(map[netip.Prefix]netip.Addr, len(moved))
	for p := range moved {
		var gw netip.Addr
		if r.pl.Runbook.BGP.AnnounceSource {
			gw = src.For(p.Addr())
		}
		want[p] = gw
	}
	fib, err := bgplab.WatchFIB(r.l.Namespace(lab.NodeEdge))
	if err != nil {
		r.res.Problems = append(r.res.Problems, "rollback --all: "+err.Error())
		return
	}
	defer fib.Close()
	fib.Expect(want)
	start := time.Now()
	took, err := r.cl.Rollback(ctx, engine.AllBatches())
	if err != nil {
		r.res.Problems = append(r.res.Problems, "rollback --all: "+err.Error())
		return
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	at, err := fib.Wait(wctx)
	if err != nil {
		r.res.Problems = append(r.res.Problems, fmt.Sprintf("rollback --all: the edge FIB still held VM routes via the target: %v", err))
		return
	}
	r.res.Rollback = at.Sub(start)
	r.printf("rollback --all: the daemon took %s; the edge FIB sent every VM back to %s %s after the command", took, r.source, r.res.Rollback.Round(time.Millisecond))
}

// snapshot captures the edge's routes and the nft table.
func (r *rehearsal) snapshot(ctx context.Context, when string) []Snapshot {
	var out []Snapshot
	fib, err := r.l.EdgeFIB(ctx)
	var b strings.Builder
	if err != nil {
		fmt.Fprintf(&b, "error: %v\n", err)
	} else {
		count := map[string]int{}
		for p, gw := range fib {
			kind := "host"
			if !p.IsSingleIP() {
				kind = p.String()
			}
			count[fmt.Sprintf("%-22s via %s", kind, gw)]++
		}
		keys := make([]string, 0, len(count))
		for k := range count {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fmt.Fprintf(&b, "%d routes in the edge's main table\n", len(fib))
		for _, k := range keys {
			fmt.Fprintf(&b, "%6d  %s\n", count[k], k)
		}
	}
	out = append(out, Snapshot{Name: "edge routes " + when, Text: b.String()})
	nftOut, err := exec.CommandContext(ctx, "ip", "netns", "exec", r.l.Namespace(lab.NodeEdge), "nft", "list", "table", "inet", tableName(r.pl)).CombinedOutput()
	text := string(nftOut)
	if err != nil {
		text = "(no table: " + strings.TrimSpace(text) + ")"
	}
	out = append(out, Snapshot{Name: "nft table " + when, Text: elide(text, 60)})
	return out
}

func tableName(pl *plan.Plan) string {
	if t := pl.Runbook.Dataplane.Table; t != "" {
		return t
	}
	return "cutover"
}

// elide keeps the first n lines of long element lists.
func elide(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) <= n {
		return s
	}
	return strings.Join(lines[:n], "\n") + fmt.Sprintf("\n… %d more lines", len(lines)-n)
}

// reportInput reads the run's journal for its report and its evidence
// record; nil when the journal cannot be read (a problem then).
func (r *rehearsal) reportInput(ctx context.Context, snaps []Snapshot) *ReportInput {
	es, err := r.cl.Journal(ctx)
	if err != nil {
		r.res.Problems = append(r.res.Problems, "read the journal for the report: "+err.Error())
		return nil
	}
	return &ReportInput{Entries: es, RunbookPath: r.o.Runbook, RunbookDigest: r.pl.Runbook.Digest,
		InventoryDigest: r.pl.Inventory.Digest, Snapshots: snaps, Result: r.res}
}

func (r *rehearsal) writeReport(in ReportInput) {
	dir := r.o.ReportDir
	if dir == "" {
		dir = filepath.Join("reports", r.pl.Runbook.Name+"-"+time.Now().Format("20060102-150405"))
	}
	r.res.ReportDir = dir
	in.Took = time.Since(r.began)
	files, err := r.o.Report(dir, in)
	if err != nil {
		r.res.Problems = append(r.res.Problems, "write the report: "+err.Error())
	}
	r.res.Reports = files
}
