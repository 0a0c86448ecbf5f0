package schedule

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/evidence"
	"github.com/cutover/cutover/internal/golden"
)

// icalInventory has a tenant with a space and letters beyond ASCII, VM
// names that put multi-byte letters across a fold, and a VM with two
// addresses (a comma to escape).
const icalInventory = `name,address,tenant,tier,probe
a1,10.64.0.10,alpha,3,http:80/
a2,10.64.0.11,alpha,3,tcp:80
a3,10.64.0.12,alpha,2,
a4,10.64.0.13,alpha,1,http:80/
b1,10.64.0.20,beta,3,http:80/
b1,fd00:64::20,beta,3,http:80/
b2,10.64.0.21,beta,2,icmp
b3,10.64.0.22,beta,1,https:443/health
møre-og-romsdal-ålesund-sjukehus-røntgen-æøå-åøæ-01,10.64.0.30,Helse Møre,3,http:80/
møre-og-romsdal-ålesund-sjukehus-røntgen-æøå-åøæ-02,10.64.0.32/31,Helse Møre,2,tcp:22
møre-og-romsdal-ålesund-sjukehus-røntgen-æøå-åøæ-03,10.64.0.34,Helse Møre,1,
`

// icalSchedule is the schedule of the base runbook over icalInventory,
// measured in two rehearsals, starting 2026-12-03 23:00 +01:00.
func icalSchedule(t *testing.T) *Schedule {
	t.Helper()
	pl := loadPlan(t, [][2]string{{"tenants: [alpha, beta, gamma]", "tenants: [alpha, beta, Helse Møre]"}}, icalInventory)
	c := engine.BatchCommitted
	ev := Evidence{Dir: "/var/lib/cutover/rehearsals", Records: []*evidence.Record{
		record(pl, 3, []timing{{c, 8, 50, 5}, {c, 60, 90, 0}, {c, 200, 260, 0}}),
		record(pl, 0, []timing{{c, 10, 40, 0}, {c, 50, 100, 0}, {c, 110, 150, 0}}),
	}}
	s, err := New(pl, Options{Evidence: ev, Now: now, Start: time.Date(2026, 12, 3, 23, 0, 0, 0, time.FixedZone("", 3600))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestICal writes every tenant's calendar to golden files, then reads
// each back as a calendar client would: lines of at most 75 octets
// ending in CRLF, folds that split no character, and values that unescape
// to what was meant.
func TestICal(t *testing.T) {
	s := icalSchedule(t)
	dir := t.TempDir()
	files, err := s.WriteICalDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	if want := []string{"Helse_Møre.ics", "alpha.ics", "beta.ics"}; !slices.Equal(names, want) {
		t.Fatalf("files %q, want %q", names, want)
	}
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		golden.Check(t, filepath.Join("testdata", "ical", names[i]), data)
		tn := s.Tenants[i]
		events := parseICal(t, data)
		if len(events) != len(tn.Batches) {
			t.Fatalf("%s: %d events, want %d", names[i], len(events), len(tn.Batches))
		}
		for j, ev := range events {
			p := tn.Batches[j]
			if got, want := ev["DESCRIPTION"], s.eventText(tn, p); got != want {
				t.Errorf("%s event %d: DESCRIPTION reads back as\n%q\nwant\n%q", names[i], j, got, want)
			}
			if got, want := ev["UID"], EventUID(s.Plan.Runbook.Digest, tn.Name, p.Batch.Index, p.Batch.Name); got != want {
				t.Errorf("%s event %d: UID %q, want %q", names[i], j, got, want)
			}
			start, err1 := time.Parse(icalStamp, ev["DTSTART"])
			end, err2 := time.Parse(icalStamp, ev["DTEND"])
			if err1 != nil || err2 != nil || start.After(s.Start.Add(p.Batch.StartMin)) || end.Before(s.Start.Add(p.Batch.EndMax)) || !end.After(start) {
				t.Errorf("%s event %d: %s to %s does not hold the window %s to %s", names[i], j, ev["DTSTART"], ev["DTEND"],
					s.Start.Add(p.Batch.StartMin).UTC(), s.Start.Add(p.Batch.EndMax).UTC())
			}
			for _, vm := range p.VMs {
				if !strings.Contains(ev["DESCRIPTION"], "\n"+vm.Name+" ") {
					t.Errorf("%s event %d: DESCRIPTION lacks %s", names[i], j, vm.Name)
				}
			}
		}
	}
	// Another rendering of the same bytes keeps the UIDs.
	again := icalSchedule(t)
	var b1, b2 bytes.Buffer
	if err := s.WriteICal(&b1, s.Tenants[0]); err != nil {
		t.Fatal(err)
	}
	if err := again.WriteICal(&b2, again.Tenants[0]); err != nil {
		t.Fatal(err)
	}
	if b1.String() != b2.String() {
		t.Error("two renderings differ")
	}
}

// parseICal unfolds a calendar and returns its events' properties,
// unescaped, checking the line rules on the way.
func parseICal(t *testing.T, data []byte) []map[string]string {
	t.Helper()
	text := string(data)
	if !strings.HasSuffix(text, "\r\n") {
		t.Fatal("does not end in CRLF")
	}
	raw := strings.Split(strings.TrimSuffix(text, "\r\n"), "\r\n")
	var lines []string
	for _, l := range raw {
		if strings.Contains(l, "\n") || strings.Contains(l, "\r") {
			t.Fatalf("bare line break in %q", l)
		}
		if len(l) > icalLineOctets {
			t.Errorf("line of %d octets: %q", len(l), l)
		}
		if !utf8.ValidString(l) {
			t.Errorf("fold splits a character: %q", l)
		}
		if strings.HasPrefix(l, " ") {
			lines[len(lines)-1] += l[1:]
			continue
		}
		lines = append(lines, l)
	}
	if lines[0] != "BEGIN:VCALENDAR" || lines[len(lines)-1] != "END:VCALENDAR" {
		t.Fatalf("not a calendar: %q … %q", lines[0], lines[len(lines)-1])
	}
	var events []map[string]string
	var cur map[string]string
	for _, l := range lines {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("no colon in %q", l)
		}
		switch {
		case l == "BEGIN:VEVENT":
			cur = map[string]string{}
		case l == "END:VEVENT":
			for _, p := range []string{"UID", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY", "DESCRIPTION"} {
				if cur[p] == "" {
					t.Errorf("event without %s", p)
				}
			}
			events = append(events, cur)
			cur = nil
		case cur != nil:
			cur[name] = unescapeText(t, value)
		}
	}
	return events
}

// unescapeText undoes RFC 5545 TEXT escaping, refusing an unescaped
// comma or semicolon.
func unescapeText(t *testing.T, s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n', 'N':
				b.WriteByte('\n')
			case '\\', ';', ',':
				b.WriteByte(s[i])
			default:
				t.Errorf("unknown escape \\%c in %q", s[i], s)
			}
		case c == ',' || c == ';':
			t.Errorf("unescaped %c in %q", c, s)
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func TestFoldAndEscape(t *testing.T) {
	tests := []string{
		"short",
		strings.Repeat("x", 200),
		strings.Repeat("ø", 100),           // two octets each: no fold may split one
		"x" + strings.Repeat("€", 60),      // three octets each, off by one
		`a;b,c\d` + "\nnext line\r\nthird", // every escape
		strings.Repeat("a,", 80),           // escapes that grow the line past a fold
	}
	for _, in := range tests {
		var b strings.Builder
		foldLine(&b, "DESCRIPTION:"+escapeText(in))
		data := "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:u\r\nDTSTAMP:d\r\nDTSTART:s\r\nDTEND:e\r\nSUMMARY:x\r\n" + b.String() + "END:VEVENT\r\nEND:VCALENDAR\r\n"
		evs := parseICal(t, []byte(data))
		want := strings.ReplaceAll(strings.ReplaceAll(in, "\r\n", "\n"), "\r", "\n")
		if len(evs) != 1 || evs[0]["DESCRIPTION"] != want {
			t.Errorf("%q reads back as %q", in, evs[0]["DESCRIPTION"])
		}
	}
}

func TestFileNames(t *testing.T) {
	tests := []struct{ tenant, want string }{
		{"alpha", "alpha.ics"},
		{"St Olav", "St_Olav.ics"},
		{"Helse Møre", "Helse_Møre.ics"},
		{".hidden", "_hidden.ics"},
		{"..", "_..ics"},
		{"a.b-c_d", "a.b-c_d.ics"},
	}
	for _, tt := range tests {
		if got := FileName(tt.tenant); got != tt.want {
			t.Errorf("FileName(%q) = %q, want %q", tt.tenant, got, tt.want)
		}
	}
	collide := []struct {
		inventory, want string
	}{
		{"St Olav", `tenants "St Olav" and "St_Olav" would both be written to St_Olav.ics: rename one in the inventory`},
		{"ST_OLAV", `tenants "ST_OLAV" and "St_Olav" would both be written to St_Olav.ics: rename one in the inventory`},
	}
	for _, tt := range collide {
		inv := "name,address,tenant,tier,probe\na1,10.64.0.10," + tt.inventory + ",3,http:80/\na2,10.64.0.11,St_Olav,3,http:80/\na3,10.64.0.12,St_Olav,2,\n"
		pl := loadPlan(t, [][2]string{{"tenants: [alpha, beta, gamma]\n", ""}}, inv)
		s, err := New(pl, Options{Now: now, Start: now})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.FileNames(); err == nil || err.Error() != tt.want {
			t.Errorf("%s: got %v\nwant %s", tt.inventory, err, tt.want)
		}
		dir := t.TempDir()
		if _, err := s.WriteICalDir(dir); err == nil {
			t.Errorf("%s: WriteICalDir wrote colliding files", tt.inventory)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%s: %d files written before the refusal", tt.inventory, len(ents))
		}
	}
}

func TestICalNeedsStart(t *testing.T) {
	s, err := New(loadPlan(t, nil, ""), Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := s.WriteICal(&b, s.Tenants[0]); !errors.Is(err, ErrNoStart) {
		t.Errorf("WriteICal: %v", err)
	}
	if _, err := s.WriteICalDir(t.TempDir()); !errors.Is(err, ErrNoStart) {
		t.Errorf("WriteICalDir: %v", err)
	}
}
