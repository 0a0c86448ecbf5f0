package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/health"
	"github.com/cutover/cutover/cutover/notify"
	"github.com/cutover/cutover/internal/logcheck"
)

// tenantsRunbook has 6 VMs of two tenants in 3 batches of 2:
// batch-01 hb-1 hb-2, batch-02 hb-3 unn-1, batch-03 unn-2 unn-3.
const tenantsRunbook = "testdata/tenants/runbook.yaml"

// hookNotices is a webhook server that keeps the notices posted to it.
type hookNotices struct {
	mu  sync.Mutex
	got []notify.Notice
}

func (h *hookNotices) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var n notify.Notice
	if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.got = append(h.got, n)
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookNotices) notices() []notify.Notice {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

func fileNotices(t *testing.T, path string) []notify.Notice {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ns []notify.Notice
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var n notify.Notice
		if err := json.Unmarshal(sc.Bytes(), &n); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		ns = append(ns, n)
	}
	return ns
}

// noticeLines renders notices a line each, and checks what every notice
// of tenant must have: its name, the run, and nothing of another tenant.
func noticeLines(t *testing.T, tenant, other, run string, ns []notify.Notice) []string {
	t.Helper()
	var lines []string
	for _, n := range ns {
		if n.Tenant != tenant || n.Run != run || n.Runbook != "tenants-test" || n.Time.IsZero() {
			t.Errorf("%s's notice %+v: tenant, run %s, runbook or time wrong", tenant, n, run)
		}
		if strings.Contains(n.Message, other) || strings.Contains(n.Text, other) || slices.ContainsFunc(n.VMs, func(vm string) bool { return strings.HasPrefix(vm, other) }) {
			t.Errorf("%s's notice tells of %s: %+v", tenant, other, n)
		}
		line := fmt.Sprintf("%s %v count %d", n.Kind, n.VMs, n.Count)
		if n.Batch != nil {
			line = fmt.Sprintf("%s %d %s %v", n.Kind, n.Batch.Index, n.Batch.Name, n.VMs)
		}
		if n.End != nil {
			line += fmt.Sprintf(" target %d source %d %s", n.End.AtTarget, n.End.AtSource, n.End.Outcome)
		}
		lines = append(lines, line)
	}
	return lines
}

// TestDaemonTenantNotices runs a runbook with two tenants, one heard by
// webhook and one by file, in which one batch fails its gates and is
// rolled back; then a new daemon process rolls back every batch at once.
// Each tenant hears exactly of its VMs' batches, one notice per batch even
// when several roll back at once, and the restart tells no history again.
func TestDaemonTenantNotices(t *testing.T) {
	ctx := context.Background()
	dir, logs := t.TempDir(), t.TempDir()
	abs, _ := filepath.Abs(tenantsRunbook)
	hook := &hookNotices{}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	conf := filepath.Join(logs, "tenants.yaml")
	unnFile, anyFile := filepath.Join(logs, "unn.jsonl"), filepath.Join(logs, "tenants.jsonl")
	routes := fmt.Sprintf("tenants:\n  helse-bodo:\n    webhook: %s/hooks/bodo\n  unn:\n    file: %s\n  \"*\":\n    file: %s\n", srv.URL, unnFile, anyFile)
	if err := os.WriteFile(conf, []byte(routes), 0o600); err != nil {
		t.Fatal(err)
	}
	// unn-2 fails its gate (its probe 0 is the baseline's): batch-03
	// rolls back by policy, and the run ends partial.
	probe := func() *health.Fake {
		return &health.Fake{Func: func(tg health.Target, n int) health.Result {
			if tg.Name == "unn-2" && n >= 1 {
				return health.Result{Err: "tcp 80: connection refused"}
			}
			return health.Result{OK: true}
		}}
	}
	open := func() *daemonHarness {
		return openDaemonConfig(t, Config{StateDir: dir, Backends: &FakeBackends{Probe: probe()},
			Log: zerolog.New(logcheck.Writer(t)), TenantNotify: conf})
	}

	h := open()
	if err := h.cl.Run(ctx, abs, true); err != nil {
		t.Fatalf("run: %v", err)
	}
	st := h.waitFor("the end", func(s engine.RunState) bool { return s.Phase == engine.PhaseDone })
	if st.Outcome() != engine.OutcomePartial || !slices.Equal(st.Applied, []int{0, 1}) {
		t.Fatalf("outcome %s, applied %v; want partial, [0 1]", st.Outcome(), st.Applied)
	}
	h.stop() // delivers what is queued

	bodo := []string{
		"batch-start 0 batch-01 [hb-1 hb-2]",
		"batch-commit 0 batch-01 [hb-1 hb-2]",
		"batch-start 1 batch-02 [hb-3]",
		"batch-commit 1 batch-02 [hb-3]",
		"run-end [] count 3 target 3 source 0 partial",
	}
	unn := []string{
		"batch-start 1 batch-02 [unn-1]",
		"batch-commit 1 batch-02 [unn-1]",
		"batch-start 2 batch-03 [unn-2 unn-3]",
		"batch-rollback 2 batch-03 [unn-2 unn-3]",
		"run-end [unn-2 unn-3] count 3 target 1 source 2 partial",
	}
	check := func(bodo, unn []string) {
		t.Helper()
		if got := noticeLines(t, "helse-bodo", "unn", st.RunID, hook.notices()); !slices.Equal(got, bodo) {
			t.Errorf("helse-bodo's notices (webhook)\n got %q\nwant %q", got, bodo)
		}
		if got := noticeLines(t, "unn", "hb-", st.RunID, fileNotices(t, unnFile)); !slices.Equal(got, unn) {
			t.Errorf("unn's notices (file)\n got %q\nwant %q", got, unn)
		}
		// Both tenants have a route of their own: "*" hears nothing.
		if ns := fileNotices(t, anyFile); len(ns) != 0 {
			t.Errorf("the route of \"*\" got %+v", ns)
		}
	}
	check(bodo, unn)
	ns := fileNotices(t, unnFile)
	for i, want := range map[int]string{
		0: "batch-02 starts: the traffic of 1 VM (unn-1) moves from skm1 to skm2",
		3: "batch-03 rolled back: the traffic of 2 VMs (unn-2, unn-3) is back at skm1 (it failed its health gates)",
		4: "the run ended (partial): the traffic of 1 VM is at skm2, of 2 VMs (unn-2, unn-3) at skm1",
	} {
		if ns[i].Message != want {
			t.Errorf("unn's notice %d says %q, want %q", i, ns[i].Message, want)
		}
	}

	// A new daemon process: the journal's history is not told again;
	// rollback --all takes batches 0 and 1 back in one change, and each
	// tenant hears of each of its batches.
	h = open()
	if _, err := h.cl.Rollback(ctx, engine.AllBatches()); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the rollback", func(s engine.RunState) bool { return s.Phase == engine.PhaseAborted })
	h.stop()
	check(append(bodo,
		"batch-rollback 0 batch-01 [hb-1 hb-2]",
		"batch-rollback 1 batch-02 [hb-3]",
		"run-end [hb-1 hb-2 hb-3] count 3 target 0 source 3 aborted",
	), append(unn,
		"batch-rollback 1 batch-02 [unn-1]",
		"run-end [unn-1 unn-2 unn-3] count 3 target 0 source 3 aborted",
	))
	if ns := hook.notices(); !strings.HasSuffix(ns[5].Message, "is back at skm1 (an operator rolled it back)") {
		t.Errorf("helse-bodo's rollback notice says %q", ns[5].Message)
	}
}

// TestDaemonTenantNoticesConfig: a routing file with a mistake stops the
// daemon from starting, and says where; the journal is not touched.
func TestDaemonTenantNoticesConfig(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(conf, []byte("tenants:\n  unn:\n    fil: /var/log/unn.jsonl\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	_, err := Open(context.Background(), Config{StateDir: state, Backends: &FakeBackends{},
		Log: zerolog.New(logcheck.Writer(t)), TenantNotify: conf})
	want := "tenant notices: " + conf + `:3: tenants.unn.fil: unknown field (did you mean "file"?)`
	if err == nil || err.Error() != want {
		t.Fatalf("Open: %v\nwant %s", err, want)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("the state directory was touched: %v", err)
	}
}
