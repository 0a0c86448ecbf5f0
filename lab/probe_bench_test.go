package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/cutover/health"
	"github.com/cutover/cutover/internal/netnsrun"
	"github.com/cutover/cutover/internal/testenv"
)

// probeBenchEnv, set to a lab's name, makes this test binary the probe
// bench's child: it runs inside the lab's ctl namespace (as the daemon
// does) and answers round requests on stdin with their results on stdout.
const probeBenchEnv = "CUTOVER_PROBEBENCH_LAB"

// probeBenchName is the lab the bench brings up (and takes down).
const probeBenchName = "probebench"

// probeBenchTargets is how many targets one round probes.
const probeBenchTargets = 10000

func init() {
	// The child is this binary again, inside ctl: it serves rounds and
	// exits before any test or benchmark runs. Not on this goroutine: it
	// is locked to the main thread during init, and a round fed from a
	// locked goroutine pays a thread hand-off per probe that the daemon
	// does not.
	if name := os.Getenv(probeBenchEnv); name != "" {
		code := make(chan int)
		go func() { code <- serveProbeBench(name, os.Stdin, os.Stdout) }()
		os.Exit(<-code)
	}
}

// probeBenchReq asks the child for rounds of probes.
type probeBenchReq struct {
	Concurrency int           `json:"concurrency"`
	Timeout     time.Duration `json:"timeout"`
	Rounds      int           `json:"rounds"`
	// Netns is the prober's Options.Netns ("": ctl itself, as a daemon
	// started without --probe-netns; hosp as the lab's rehearsal runs it).
	Netns string `json:"netns,omitempty"`
	// CPUProfile, when set, is a file the child writes a CPU profile of
	// the rounds to.
	CPUProfile string `json:"cpu_profile,omitempty"`
}

// probeBenchResp is the child's answer: how long each round took and
// what failed.
type probeBenchResp struct {
	Took    []time.Duration `json:"took"`
	CPU     time.Duration   `json:"cpu"`     // the child's, user and system, over all rounds
	Threads int             `json:"threads"` // the child's OS threads after the rounds
	Probes  int             `json:"probes"`
	Failed  int             `json:"failed"`          // over all rounds
	Errs    map[string]int  `json:"errs"`            // failures by reason
	Error   string          `json:"error,omitempty"` // the child could not run the rounds
}

// probeBenchTargetsOf are the first n VMs of the lab with the rehearsal's
// mix of probes: 84% http 80 / and 16% tcp 80 (the rehearsal's 4% of VMs
// without a probe are probed too, so that a round is n probes).
func probeBenchTargetsOf(topo Topology, n int) ([]health.Target, error) {
	if len(topo.VMs) < n {
		return nil, fmt.Errorf("the lab has %d VMs, the bench needs %d", len(topo.VMs), n)
	}
	ts := make([]health.Target, n)
	for i := range ts {
		pr := health.Probe{Kind: health.KindHTTP}
		if i%25 < 4 {
			pr = health.Probe{Kind: health.KindTCP, Port: HTTPPort}
		}
		ts[i] = health.Target{Name: "vm-" + strconv.Itoa(i), Addr: topo.VMs[i].Addr(), Probe: pr}
	}
	return ts, nil
}

// serveProbeBench is the child's main: it returns the exit code.
func serveProbeBench(name string, in io.Reader, out io.Writer) int {
	l, err := Open(name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe bench:", err)
		return 2
	}
	ts, err := probeBenchTargetsOf(l.Topology(), probeBenchTargets)
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe bench:", err)
		return 2
	}
	dec := json.NewDecoder(bufio.NewReader(in))
	enc := json.NewEncoder(out)
	for {
		var req probeBenchReq
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return 0
			}
			fmt.Fprintln(os.Stderr, "probe bench: read request:", err)
			return 2
		}
		resp, err := runProbeBench(req, ts)
		if err != nil {
			resp.Error = err.Error()
		}
		if err := enc.Encode(resp); err != nil {
			fmt.Fprintln(os.Stderr, "probe bench: write answer:", err)
			return 2
		}
	}
}

// runProbeBench runs the rounds req asks for over ts.
func runProbeBench(req probeBenchReq, ts []health.Target) (probeBenchResp, error) {
	resp := probeBenchResp{Probes: len(ts), Errs: map[string]int{}}
	p, err := health.NewProber(health.Options{Netns: req.Netns, Timeout: req.Timeout})
	if err != nil {
		return resp, err
	}
	if req.CPUProfile != "" {
		f, err := os.Create(req.CPUProfile)
		if err != nil {
			return resp, fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return resp, fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	cpu0, err := processCPU()
	if err != nil {
		return resp, err
	}
	for range req.Rounds {
		start := time.Now()
		res := health.RunRoundTimeout(context.Background(), p, ts, req.Concurrency, req.Timeout)
		resp.Took = append(resp.Took, time.Since(start))
		for _, t := range ts {
			if r := res[t.Name]; !r.OK {
				resp.Failed++
				resp.Errs[r.Err]++
			}
		}
	}
	resp.Threads = threads()
	cpu1, err := processCPU()
	resp.CPU = cpu1 - cpu0
	return resp, err
}

// threads is how many OS threads this process has (0 if unknown).
func threads() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// processCPU is the CPU time this process used so far, user and system.
func processCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// pidCPU is the CPU time process pid used so far, user and system.
func pidCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu of pid %d: %w", pid, err)
	}
	// utime and stime are the 12th and 13th fields after the command
	// name, in clock ticks (USER_HZ, 100 a second on Linux).
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// probeBenchChild is the child in ctl, driven over its stdin and stdout.
type probeBenchChild struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	dec *json.Decoder
}

func startProbeBenchChild(tb testing.TB, l *Lab) *probeBenchChild {
	tb.Helper()
	self, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := Exec(l.Namespace(NodeCtl), self)
	cmd.Env = append(os.Environ(), probeBenchEnv+"="+l.Name())
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start the probe bench in ctl: %v", err)
	}
	c := &probeBenchChild{cmd: cmd, in: in, dec: json.NewDecoder(out)}
	tb.Cleanup(func() {
		c.in.Close()
		if err := c.cmd.Wait(); err != nil {
			tb.Errorf("probe bench child: %v", err)
		}
	})
	return c
}

func (c *probeBenchChild) run(req probeBenchReq) (probeBenchResp, error) {
	var resp probeBenchResp
	if err := json.NewEncoder(c.in).Encode(req); err != nil {
		return resp, fmt.Errorf("probe bench child: send: %w", err)
	}
	if err := c.dec.Decode(&resp); err != nil {
		return resp, fmt.Errorf("probe bench child: no answer: %w", err)
	}
	if resp.Error != "" {
		return resp, fmt.Errorf("probe bench child: %s", resp.Error)
	}
	return resp, nil
}

// upProbeBenchLab brings up the lab "probebench" with n VMs (more with
// CUTOVER_PROBEBENCH_VMS, e.g. 50000 as the rehearsal's) and takes it
// down when the benchmark ends.
func upProbeBenchLab(b *testing.B) *Lab {
	b.Helper()
	if testing.Short() {
		b.Skip("the probe bench brings up a lab of 10,000 VMs: not with -short")
	}
	if os.Geteuid() != 0 {
		b.Skip("the probe bench brings up a lab in network namespaces: run it as root")
	}
	testenv.RequireFRR(b)
	n := probeBenchTargets
	if v := os.Getenv("CUTOVER_PROBEBENCH_VMS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < probeBenchTargets {
			b.Fatalf("CUTOVER_PROBEBENCH_VMS=%q: want a count of at least %d", v, probeBenchTargets)
		}
	}
	log := zerolog.New(zerolog.NewTestWriter(b)).Level(zerolog.InfoLevel)
	b.Cleanup(func() {
		if err := Down(context.Background(), probeBenchName, log); err != nil {
			b.Errorf("lab down: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, err := Up(ctx, Config{Name: probeBenchName, VMs: DefaultVMs(n)}, log)
	if err != nil {
		b.Fatalf("lab up: %v", err)
	}
	return l
}

// BenchmarkProbeRound measures one round of 10,000 probes (84% http 80 /,
// 16% tcp 80) with a 1 s timeout from the ctl namespace of a real lab
// ("probebench") to the responder of its fallback site, at concurrency 64,
// 256 and 1024: from ctl itself (as `cutover serve` runs there) and with
// the probes' sockets made in hosp (Options.Netns, as the rehearsal runs
// the daemon). It needs root and FRR. ns/op is one round; also reported:
// probes/s, the median round, failures per round, the CPU the prober and
// the site's responder used per round, and the prober's OS threads. Each
// sub-benchmark logs the kernel's TCP counters that moved in ctl, hosp,
// the edge and the site (the first also the sysctls that bound fresh
// connections there).
//
// CUTOVER_PROBEBENCH_PROFILE=dir writes a CPU profile of the prober per
// sub-benchmark to dir; CUTOVER_PROBEBENCH_CONC=64,256 picks
// concurrencies; CUTOVER_PROBEBENCH_VMS=50000 brings up as many VMs as the
// rehearsal (10,000 of them probed).
func BenchmarkProbeRound(b *testing.B) {
	l := upProbeBenchLab(b)
	pb := &probeRoundBench{l: l, child: startProbeBenchChild(b, l), responder: responderPID(b, l),
		nodes: []string{NodeCtl, NodeHosp, NodeEdge, l.Topology().BaselineSite}}
	for _, from := range []string{NodeCtl, NodeHosp} {
		for _, conc := range benchConcurrencies(b) {
			b.Run(fmt.Sprintf("from=%s/conc=%d", from, conc), func(b *testing.B) { pb.run(b, from, conc) })
		}
	}
}

// benchConcurrencies are the concurrencies to measure:
// CUTOVER_PROBEBENCH_CONC, or 64, 256 and 1024.
func benchConcurrencies(b *testing.B) []int {
	v := os.Getenv("CUTOVER_PROBEBENCH_CONC")
	if v == "" {
		return []int{64, 256, 1024}
	}
	var out []int
	for f := range strings.SplitSeq(v, ",") {
		c, err := strconv.Atoi(f)
		if err != nil || c <= 0 {
			b.Fatalf("CUTOVER_PROBEBENCH_CONC=%q: want counts such as 64,256", v)
		}
		out = append(out, c)
	}
	return out
}

// responderPID is the process id of the responder of l's fallback site.
func responderPID(b *testing.B, l *Lab) int {
	site := l.Topology().BaselineSite
	for _, d := range l.Daemons() {
		if d.Node == site && d.Name == "responder" {
			return d.PID
		}
	}
	b.Fatalf("no responder in %s", site)
	return 0
}

// probeRoundBench is what the sub-benchmarks of BenchmarkProbeRound share.
type probeRoundBench struct {
	l             *Lab
	child         *probeBenchChild
	responder     int      // pid
	nodes         []string // whose counters are logged
	sysctlsLogged bool
}

// run measures b.N rounds from node from at concurrency conc.
func (pb *probeRoundBench) run(b *testing.B, from string, conc int) {
	req := probeBenchReq{Concurrency: conc, Timeout: time.Second}
	if from != NodeCtl {
		req.Netns = pb.l.Namespace(from)
	}
	// One round first: the ARP and route caches, the child's goroutines
	// and the responder's are warm when b.N counts.
	req.Rounds = 1
	if _, err := pb.child.run(req); err != nil {
		b.Fatal(err)
	}
	if dir := os.Getenv("CUTOVER_PROBEBENCH_PROFILE"); dir != "" {
		req.CPUProfile = fmt.Sprintf("%s/prober-%s-%d.pprof", dir, from, conc)
	}
	if !pb.sysctlsLogged {
		logSysctls(b, pb.l, pb.nodes)
		pb.sysctlsLogged = true
	}
	before := netCounters(b, pb.l, pb.nodes)
	rcpu0, err := pidCPU(pb.responder)
	if err != nil {
		b.Fatal(err)
	}
	req.Rounds = b.N
	b.ResetTimer()
	resp, err := pb.child.run(req)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	rcpu1, err := pidCPU(pb.responder)
	if err != nil {
		b.Fatal(err)
	}
	logCounterDeltas(b, before, netCounters(b, pb.l, pb.nodes))
	reportProbeRounds(b, resp)
	b.ReportMetric(float64(resp.Threads), "prober-threads")
	b.ReportMetric(float64(resp.CPU.Milliseconds())/float64(b.N), "prober-cpu-ms/round")
	b.ReportMetric(float64((rcpu1-rcpu0).Milliseconds())/float64(b.N), "responder-cpu-ms/round")
}

// reportProbeRounds reports probes/s, the median round and the failures
// per round, and logs the most common failures.
func reportProbeRounds(b *testing.B, resp probeBenchResp) {
	var total time.Duration
	for _, d := range resp.Took {
		total += d
	}
	took := slices.Sorted(slices.Values(resp.Took))
	rounds := len(resp.Took)
	b.ReportMetric(float64(resp.Probes*rounds)/total.Seconds(), "probes/s")
	b.ReportMetric(float64(took[rounds/2].Milliseconds()), "median-ms")
	b.ReportMetric(float64(resp.Failed)/float64(rounds), "failed/round")
	errs := slices.SortedFunc(maps.Keys(resp.Errs), func(a, b string) int { return resp.Errs[b] - resp.Errs[a] })
	for i, e := range errs {
		if i == 5 {
			b.Logf("failures of %d more kinds", len(errs)-i)
			break
		}
		b.Logf("%d × %s", resp.Errs[e], e)
	}
}

// benchSysctls are the settings of a namespace that bound fresh
// connections at thousands a second: the ephemeral ports, their reuse from
// TIME_WAIT, the listen queues.
var benchSysctls = []string{
	"net.ipv4.ip_local_port_range", "net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_max_tw_buckets",
	"net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_syncookies",
}

// logSysctls logs benchSysctls in each node's namespace.
func logSysctls(tb testing.TB, l *Lab, nodes []string) {
	tb.Helper()
	for _, node := range nodes {
		var vals []string
		err := netnsrun.Run(l.Namespace(node), func() error {
			for _, k := range benchSysctls {
				b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(k, ".", "/"))
				if err != nil {
					return err
				}
				vals = append(vals, k+"="+strings.Join(strings.Fields(string(b)), " "))
			}
			return nil
		})
		if err != nil {
			tb.Fatalf("sysctls of %s: %v", node, err)
		}
		tb.Logf("%s: %s", node, strings.Join(vals, ", "))
	}
}

// interestingCounters are the kernel counters (of /proc/net/netstat and
// /proc/net/snmp) the bench logs when they move.
var interestingCounters = []string{
	"TcpExt.ListenOverflows", "TcpExt.ListenDrops", "TcpExt.TCPTimeWaitOverflow", "TcpExt.TCPReqQFullDrop",
	"TcpExt.TCPReqQFullDoCookies", "TcpExt.SyncookiesSent", "TcpExt.TCPBacklogDrop", "TcpExt.TW", "TcpExt.TWRecycled",
	"TcpExt.TCPAbortOnClose", "TcpExt.TCPAbortOnData", "TcpExt.TCPSynRetrans", "TcpExt.TCPDeferAcceptDrop",
	"Tcp.ActiveOpens", "Tcp.PassiveOpens", "Tcp.OutSegs", "Tcp.AttemptFails", "Tcp.EstabResets", "Tcp.RetransSegs", "Tcp.OutRsts",
	"Ip.InDiscards", "Ip.OutNoRoutes",
}

// netCounters reads the TCP counters and the count of TIME_WAIT sockets
// ("sockstat.tw") of each node.
func netCounters(tb testing.TB, l *Lab, nodes []string) map[string]map[string]int64 {
	tb.Helper()
	out := map[string]map[string]int64{}
	for _, node := range nodes {
		var m map[string]int64
		err := netnsrun.Run(l.Namespace(node), func() error {
			var err error
			m, err = readNetCounters()
			return err
		})
		if err != nil {
			tb.Fatalf("counters of %s: %v", node, err)
		}
		out[node] = m
	}
	return out
}

// readNetCounters reads the counters of the calling thread's namespace.
func readNetCounters() (map[string]int64, error) {
	m := map[string]int64{}
	for _, f := range []string{"netstat", "snmp"} {
		b, err := os.ReadFile("/proc/thread-self/net/" + f)
		if err != nil {
			return nil, err
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		for i := 0; i+1 < len(lines); i += 2 {
			names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			for j := 1; j < len(names) && j < len(values); j++ {
				v, _ := strconv.ParseInt(values[j], 10, 64)
				m[strings.TrimSuffix(names[0], ":")+"."+names[j]] = v
			}
		}
	}
	// Connections the kernel tracks (0 when no rule of the namespace
	// needs conntrack).
	if b, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_count"); err == nil {
		m["conntrack"], _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	b, err := os.ReadFile("/proc/thread-self/net/sockstat")
	if err != nil {
		return nil, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "TCP:" {
			for j := 1; j+1 < len(f); j += 2 {
				v, _ := strconv.ParseInt(f[j+1], 10, 64)
				m["sockstat."+f[j]] = v
			}
		}
	}
	return m, nil
}

// logCounterDeltas logs, per node, the interesting counters that moved and
// the TIME_WAIT sockets left.
func logCounterDeltas(tb testing.TB, before, after map[string]map[string]int64) {
	for _, node := range slices.Sorted(maps.Keys(after)) {
		var moved []string
		for _, k := range interestingCounters {
			if d := after[node][k] - before[node][k]; d != 0 {
				moved = append(moved, fmt.Sprintf("%s +%d", strings.SplitN(k, ".", 2)[1], d))
			}
		}
		tb.Logf("%s: %s; TIME_WAIT %d, conntrack %d", node, strings.Join(moved, ", "), after[node]["sockstat.tw"], after[node]["conntrack"])
	}
}
