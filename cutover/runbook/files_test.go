package runbook_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/cutover/runbook"
	"github.com/cutover/cutover/cutover/runbook/runbooktest"
)

// lastErr returns the error a call returned last.
func lastErr(results ...any) error {
	err, _ := results[len(results)-1].(error)
	return err
}

// TestContentsOverTheCaps: Parse and ParseInventory, given contents read
// by someone else, hold them to the caps of Load.
func TestContentsOverTheCaps(t *testing.T) {
	base, err := os.ReadFile("testdata/base/runbook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bigYAML := []byte("- " + strings.Repeat("x", runbook.MaxInventoryYAMLSize) + "\n")
	tests := []struct {
		name string
		err  func() error
		want []string
	}{
		{"YAML inventory", func() error { return lastErr(runbook.ParseInventory("i.yaml", bigYAML)) },
			[]string{"i.yaml: larger than 8 MiB, the most a YAML or JSON inventory may be: write it as CSV (up to 64 MiB) or split the move into several runbooks"}},
		{"JSON inventory in a snapshot", func() error { return lastErr(runbook.Parse("r.yaml", base, "i.json", bigYAML)) },
			[]string{"i.json: larger than 8 MiB, the most a YAML or JSON inventory may be: write it as CSV (up to 64 MiB) or split the move into several runbooks"}},
		{"runbook", func() error {
			return lastErr(runbook.ParseRunbook("r.yaml", append(slices.Clip(base), strings.Repeat("#\n", runbook.MaxRunbookSize/2)...)))
		}, []string{"r.yaml: larger than 1 MiB, the most a runbook may be: is it the right file?"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			if err == nil {
				t.Fatal("accepted")
			}
			if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestYAMLInventoryOverMaxPrefixes: a YAML inventory (here a snapshot
// given to Parse) far over max_prefixes is checked only so far, like CSV.
func TestYAMLInventoryOverMaxPrefixes(t *testing.T) {
	base, err := os.ReadFile("testdata/base/runbook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var inv strings.Builder
	for i := 1; i <= 6000; i++ {
		addr := fmt.Sprintf("10.65.%d.%d", i>>8, i&255)
		if i == 2 {
			addr = "10.65.0.300"
		}
		if i == 5500 {
			addr = "not checked"
		}
		// Two addresses a VM: 12,000 prefixes.
		fmt.Fprintf(&inv, "- {name: vm%d, addresses: [%s, \"fd00:64::%x\"], tenant: alpha, tier: 3}\n", i, addr, i)
	}
	_, _, _, err = runbook.Parse("runbook.yaml", base, "inventory.yaml", []byte(inv.String()))
	want := []string{
		`runbook.yaml:20: max_prefixes: the inventory has 12000 prefixes, more than max_prefixes; it was checked only up to line 5000 (value "100")`,
		`inventory.yaml:2: address: not an IP address: IPv4 field has value >255 (value "10.65.0.300")`,
	}
	if err == nil {
		t.Fatal("accepted")
	}
	if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// writeHugeCase writes the base runbook (max_prefixes: 100) with a CSV
// inventory of valid rows of about size bytes, and returns the runbook's
// path and the number of rows.
func writeHugeCase(tb testing.TB, size int) (string, int) {
	tb.Helper()
	path := runbooktest.WriteCase(tb, "testdata/base", []runbooktest.Edit{{"tenants: [alpha, beta, gamma]\n", ""}}, "")
	f, err := os.Create(filepath.Join(filepath.Dir(path), "inventory.csv"))
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	n, rows := 0, 0
	m, _ := w.WriteString("name,address,tenant,tier,probe\n")
	for n += m; n < size; n += m {
		m, _ = fmt.Fprintf(w, "vm-%07d,fd00:64::%x:%x,tenant-%02d,3,http:80/\n", rows, rows>>16, rows&0xffff, rows%20)
		rows++
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return path, rows
}

// TestHugeInventoryFailsFast: a 50 MB CSV of valid rows, far over the
// runbook's max_prefixes, is checked only up to max_prefixes (at least
// 10,000 rows) and the rest only counted, so the error comes without
// memory growing with the file. (Before, it took some 7-29 s and 0.5-0.8
// GB.) The time is logged, not asserted.
func TestHugeInventoryFailsFast(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 50 MB file")
	}
	const size = 50_000_000
	path, rows := writeHugeCase(t, size)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, _, _, err := runbook.Load(path)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("50 MB CSV, %d rows: failed in %v, %.1f MiB allocated", rows, took.Round(time.Millisecond), float64(alloc)/(1<<20))
	want := []string{fmt.Sprintf(`runbook.yaml:19: max_prefixes: the inventory has %d prefixes, more than max_prefixes; it was checked only up to line 10001 (value "100")`, rows)}
	if err == nil {
		t.Fatal("accepted")
	}
	if got := errLines(err, filepath.Dir(path)); !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Checking 10,000 rows takes a few MiB; the rest must not add to it.
	// Generous: the old reader allocated well over 1 GiB here.
	if alloc > 32<<20 {
		t.Errorf("allocated %.1f MiB, want less than 32 MiB", float64(alloc)/(1<<20))
	}
}

// BenchmarkLoadHugeInventory is Load of a runbook whose 50 MB CSV
// inventory is far over max_prefixes: how fast the mistake is reported.
func BenchmarkLoadHugeInventory(b *testing.B) {
	const size = 50_000_000
	path, _ := writeHugeCase(b, size)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := runbook.Load(path); err == nil {
			b.Fatal("accepted")
		}
	}
}
