package logcheck

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

func TestLine(t *testing.T) {
	tests := []struct {
		name, line, wantErr string
	}{
		{"valid", `{"level":"info","component":"bgp","peer":"10.255.0.1","message":"session up"}`, ""},
		{"valid nested", `{"a":{"x":1,"y":[{"x":2},{"x":3}]},"b":[1,"x",null,true,{}],"x":{}}`, ""},
		{"surrounding space", " \t{\"a\":1} \r", ""},
		{"duplicate at top level", `{"level":"info","component":"daemon","component":"bgp","message":"m"}`, `duplicate key "component"`},
		{"duplicate after unescaping", `{"a":1,"\u0061":2}`, `duplicate key "a"`},
		{"nested duplicate", `{"a":{"b":{"x":1,"x":2}}}`, `duplicate key "x" in /a/b`},
		{"duplicate in an array element", `{"peers":[{"as":1},{"as":2,"as":3}]}`, `duplicate key "as" in /peers/1`},
		{"pointer escapes", `{"a/b":{"c~d":{"k":1,"k":1}}}`, `duplicate key "k" in /a~1b/c~0d`},
		{"same key in sibling objects", `{"a":{"k":1},"b":{"k":1},"k":1}`, ""},
		{"not JSON", `panic: runtime error: index out of range`, `not JSON: invalid character 'p' looking for beginning of value`},
		{"not an object", `[{"a":1}]`, `not a JSON object: starts with an array`},
		{"a string", `"hello"`, `not a JSON object: starts with a string`},
		{"two objects on a line", `{"a":1}{"b":2}`, `more than one JSON value on the line: an object after the object at byte 7`},
		{"two objects with space", `{"a":1} {"b":2}`, `more than one JSON value on the line: an object after the object at byte 7`},
		{"a number after", `{"a":1} 2`, `more than one JSON value on the line: a number after the object at byte 7`},
		{"trailing garbage", `{"a":1} xyz`, `trailing data after the object at byte 7: invalid character 'x' looking for beginning of value`},
		{"cut off", `{"level":"info","message":"sess`, `not JSON: the line ends inside the object`},
		{"cut off after a member", `{"a":1`, `not JSON: the line ends inside the object`},
		{"bad value", `{"a":tru}`, `not JSON: invalid character '}' in literal true (expecting 'e')`},
		{"empty", ``, `empty line`},
		{"blank", " \t", `empty line`},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", `not valid UTF-8`},
		{"too deep", strings.Repeat(`{"a":`, 101) + "1" + strings.Repeat("}", 101), `nested deeper than 100 at /a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Line([]byte(tt.line))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Errorf("Line(%q) = %q, want %q", tt.line, got, tt.wantErr)
			}
		})
	}
}

func TestLog(t *testing.T) {
	log := strings.Join([]string{
		`{"a":1}`,
		``,
		`{"a":1,"a":2}`,
		`goroutine 1 [running]:`,
		`{"b":{"c":1,"c":1}}`,
		`{"ok":true}`,
		`{"last":1}{"x":2}`, // no newline at the end
	}, "\n")
	rep, err := Log(strings.NewReader(log), 2)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%d lines, %d bad:", rep.Lines, rep.Bad)
	for _, p := range rep.Problems {
		got += fmt.Sprintf(" [%v: %s]", p, p.Text)
	}
	want := `6 lines, 4 bad: [line 3: duplicate key "a": {"a":1,"a":2}]` +
		` [line 4: not JSON: invalid character 'g' looking for beginning of value: goroutine 1 [running]:]`
	if got != want {
		t.Errorf("Log(…, 2) =\n%s\nwant\n%s", got, want)
	}
	rep, _ = Log(strings.NewReader(log), 0)
	if len(rep.Problems) != 4 || rep.Problems[3].Line != 7 {
		t.Errorf("Log(…, 0) kept %v, want all 4 problems, the last on line 7", rep.Problems)
	}
	long := `{"a":"` + strings.Repeat("x", 1<<20) + `","a":1}` + "\n"
	if rep, _ := Log(strings.NewReader(long), 0); rep.Bad != 1 || rep.Problems[0].Err.Error() != `duplicate key "a"` {
		t.Errorf("a 1 MiB line: %d bad, want the duplicate found", rep.Bad)
	}
}

// fakeT records what Writer does with a test.
type fakeT struct {
	mu       sync.Mutex
	logs     []string
	errs     []string
	cleanups []func()
}

func (f *fakeT) Helper() {}
func (f *fakeT) Log(args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, fmt.Sprint(args...))
}
func (f *fakeT) Logf(format string, args ...any) { f.Log(fmt.Sprintf(format, args...)) }
func (f *fakeT) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}
func (f *fakeT) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func (f *fakeT) end() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestWriter(t *testing.T) {
	ft := &fakeT{}
	w := Writer(ft)
	log := zerolog.New(w).With().Str("component", "daemon").Logger()
	log.Info().Msg("one")
	bgp := log.With().Str("component", "bgp").Logger()
	bgp.Info().Msg("two")
	// Partial writes: a line in pieces, two lines in one write, and a
	// last line without its newline.
	for _, p := range []string{`{"a":`, `1}`, "\n", `{"b":2}` + "\n" + `{"c":3,`, `"c":4}` + "\n" + `{"d":`, `5,"d":6}`} {
		if n, err := w.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if len(ft.logs) != 5 {
		t.Errorf("logged %d lines before the end of the test, want 5: %q", len(ft.logs), ft.logs)
	}
	ft.end()
	wantLogs := []string{
		`{"level":"info","component":"daemon","message":"one"}`,
		`{"level":"info","component":"daemon","component":"bgp","message":"two"}`,
		`{"a":1}`, `{"b":2}`, `{"c":3,"c":4}`, `{"d":5,"d":6}`,
	}
	wantErrs := []string{
		`log line is not strict JSON with unique keys: duplicate key "component": {"level":"info","component":"daemon","component":"bgp","message":"two"}`,
		`log line is not strict JSON with unique keys: duplicate key "c": {"c":3,"c":4}`,
		`log line is not strict JSON with unique keys: duplicate key "d": {"d":5,"d":6}`,
	}
	if fmt.Sprint(ft.logs) != fmt.Sprint(wantLogs) {
		t.Errorf("logged\n%q\nwant\n%q", ft.logs, wantLogs)
	}
	if fmt.Sprint(ft.errs) != fmt.Sprint(wantErrs) {
		t.Errorf("errors\n%q\nwant\n%q", ft.errs, wantErrs)
	}
}

func TestWriterConcurrent(t *testing.T) {
	ft := &fakeT{}
	log := zerolog.New(Writer(ft))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				log.Info().Int("g", i).Int("n", j).Msg("x")
			}
		}()
	}
	wg.Wait()
	ft.end()
	if len(ft.logs) != 800 || len(ft.errs) != 0 {
		t.Errorf("%d lines logged, errors %q; want 800, none", len(ft.logs), ft.errs)
	}
}
