package rehearse

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckLog checks daemon.log twice as a rehearsal does: at the end of
// the run, with the daemon up, and after it stopped.
func TestCheckLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.log")
	good := `{"level":"info","component":"daemon","message":"daemon ready"}` + "\n"
	dup := `{"level":"info","component":"bgp","component":"bgp","message":"peer state"}` + "\n"
	write := func(s string) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	// A daemon that is alive: this process, found by its own command line.
	r := &rehearsal{res: &Result{OK: true}, ld: &labDaemon{PID: os.Getpid(), Socket: os.Args[0]}}
	write(good + good + `{"level":"info","comp`) // the last line still being written
	r.checkLog(path)
	want := []string{"daemon.log: 2 lines, each strict JSON with unique keys"}
	if strings.Join(r.res.Checked, "\n") != strings.Join(want, "\n") || len(r.res.Problems) != 0 || !r.res.OK {
		t.Fatalf("with the daemon up: checked %q, problems %q, OK %v; want %q, none, true", r.res.Checked, r.res.Problems, r.res.OK, want)
	}

	r.ld = nil // stopped
	write(`onent":"daemon","message":"daemon stopping"}` + "\n" + strings.Repeat(dup, 6) + "panic: boom\n")
	r.checkLog(path)
	want = append(want, "daemon.log: 8 more lines as the daemon stopped, 7 of them not strict JSON with unique keys ("+path+")")
	if strings.Join(r.res.Checked, "\n") != strings.Join(want, "\n") {
		t.Errorf("checked\n%s\nwant\n%s", strings.Join(r.res.Checked, "\n"), strings.Join(want, "\n"))
	}
	var wantProblems []string
	for n := 4; n < 4+maxLogProblems; n++ { // line 3 is the one finished after the first check
		wantProblems = append(wantProblems, fmt.Sprintf(`daemon.log line %d: duplicate key "component": %s`, n, strings.TrimSpace(dup)))
	}
	if got := strings.Join(r.res.Problems, "\n"); got != strings.Join(wantProblems, "\n") {
		t.Errorf("problems\n%s\nwant (the first %d)\n%s", got, maxLogProblems, strings.Join(wantProblems, "\n"))
	}
	if r.res.OK {
		t.Error("OK after bad lines")
	}
}

func TestShortLine(t *testing.T) {
	long := strings.Repeat("x", 199) + "é" + "yyy"
	if got, want := shortLine(long), strings.Repeat("x", 199)+"…"; got != want {
		t.Errorf("shortLine = %q, want %q: cut at 200 bytes, no half rune", got, want)
	}
	if got := shortLine("short"); got != "short" {
		t.Errorf("shortLine(short) = %q", got)
	}
}
