package schedule

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cutover/cutover/internal/words"
)

// ErrNoStart is returned by WriteICal and WriteICalDir for a schedule
// without a start: a calendar needs clock times.
var ErrNoStart = errors.New("a calendar needs the run's start, and the schedule has none")

// icalStamp is an iCalendar UTC date-time (RFC 5545, 3.3.5, form #2).
const icalStamp = "20060102T150405Z"

// icalLineOctets is the longest content line RFC 5545 (3.1) allows,
// without its CRLF.
const icalLineOctets = 75

// WriteICal writes tenant t's calendar (RFC 5545): one event per batch
// that holds VMs of t, from the batch's earliest start to its latest end
// (widened to whole minutes, in UTC), describing its VMs. An event's UID
// is the same for the same runbook bytes, tenant and batch, so that a
// calendar imported again updates its events instead of doubling them;
// DTSTAMP is when the schedule was made.
func (s *Schedule) WriteICal(w io.Writer, t *Tenant) error {
	if s.Start.IsZero() {
		return ErrNoStart
	}
	rb := s.Plan.Runbook
	var b strings.Builder
	line := func(name, value string) { foldLine(&b, name+":"+value) }
	text := func(name, value string) { line(name, escapeText(value)) }
	line("BEGIN", "VCALENDAR")
	line("VERSION", "2.0")
	line("PRODID", "-//cutover//tenant schedule//EN")
	line("CALSCALE", "GREGORIAN")
	line("METHOD", "PUBLISH")
	text("X-WR-CALNAME", t.Name+": "+rb.Name)
	for _, p := range t.Batches {
		bt := p.Batch
		start := s.Start.Add(bt.from()).UTC().Truncate(time.Minute)
		end := s.Start.Add(bt.to()).UTC()
		if e := end.Truncate(time.Minute); !e.Equal(end) {
			end = e.Add(time.Minute)
		}
		if !end.After(start) {
			end = start.Add(time.Minute)
		}
		line("BEGIN", "VEVENT")
		line("UID", EventUID(rb.Digest, t.Name, bt.Index, bt.Name))
		line("DTSTAMP", s.Made.UTC().Format(icalStamp))
		line("DTSTART", start.Format(icalStamp))
		line("DTEND", end.Format(icalStamp))
		verb := "move"
		if len(p.VMs) == 1 {
			verb = "moves"
		}
		text("SUMMARY", fmt.Sprintf("%s: %s %s to %s (%s, batch %d %s)", t.Name, words.Plural(len(p.VMs), "VM"), verb, rb.Move.To, rb.Name, bt.Index, bt.Name))
		text("DESCRIPTION", s.eventText(t, p))
		line("TRANSP", "TRANSPARENT")
		line("END", "VEVENT")
	}
	line("END", "VCALENDAR")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write calendar of %s: %w", t.Name, err)
	}
	return nil
}

// eventText describes a tenant's part of a batch, for the event's
// DESCRIPTION.
func (s *Schedule) eventText(t *Tenant, p *Part) string {
	rb, bt := s.Plan.Runbook, p.Batch
	var b strings.Builder
	fmt.Fprintf(&b, "cutover moves %s (%s) of %s from %s to %s in batch %d %s of %s.\n",
		words.Plural(len(p.VMs), "VM"), words.Plural(p.Addresses, "address"), t.Name, rb.Move.From, rb.Move.To, bt.Index, bt.Name, rb.Name)
	fmt.Fprintf(&b, "Window: %s – %s after the run's start at %s %s, %s.\n",
		Offset(bt.from()), Offset(bt.to()), s.Start.In(s.Loc).Format(clockLayout), s.zoneName(), s.clockSpan(bt.from(), bt.to()))
	if bt.Rehearsed > 0 {
		fmt.Fprintf(&b, "Times: %s; the window runs from the batch's earliest start to its latest commit across the %d that committed it.\n", s.Times, bt.Rehearsed)
	} else if s.Times.Measured() {
		fmt.Fprintf(&b, "Times: estimated from the runbook (no rehearsal committed this batch): %s.\n", s.Times.Estimate)
	} else {
		fmt.Fprintf(&b, "Times: %s.\n", s.Times)
	}
	if bt.AfterGo != "" {
		fmt.Fprintf(&b, "The run waits for a person's go at %s before this batch; the times assume a prompt answer.\n", bt.AfterGo)
	}
	if bt.PastClose {
		fmt.Fprintf(&b, "The batch may start after the change window closes; it would then wait for the next opening.\n")
	}
	fmt.Fprintf(&b, "Plan digest %s.\nVMs:", s.Plan.Digest)
	for _, vm := range p.VMs {
		addrs := make([]string, len(vm.Prefixes))
		for i, pr := range vm.Prefixes {
			if pr.IsSingleIP() {
				addrs[i] = pr.Addr().String()
			} else {
				addrs[i] = pr.String()
			}
		}
		fmt.Fprintf(&b, "\n%s %s", vm.Name, strings.Join(addrs, ", "))
	}
	return b.String()
}

// EventUID is the UID of a tenant's event for a batch: a hash of the
// runbook's digest, the tenant and the batch, stable across renderings.
func EventUID(runbookDigest, tenant string, index int, batch string) string {
	sum := sha256.Sum256([]byte(runbookDigest + "\n" + tenant + "\n" + strconv.Itoa(index) + "\n" + batch))
	return hex.EncodeToString(sum[:16]) + "@cutover"
}

// escapeText escapes a TEXT value (RFC 5545, 3.3.11): backslash,
// semicolon, comma and newline.
func escapeText(s string) string {
	return strings.NewReplacer(`\`, `\\`, ";", `\;`, ",", `\,`, "\r\n", `\n`, "\n", `\n`, "\r", `\n`).Replace(s)
}

// foldLine writes a content line ending in CRLF, folded so that no line
// is longer than 75 octets (RFC 5545, 3.1): a fold is CRLF and a space,
// and never splits a UTF-8 sequence.
func foldLine(b *strings.Builder, line string) {
	n := 0
	for i := 0; i < len(line); {
		_, size := utf8.DecodeRuneInString(line[i:])
		if n+size > icalLineOctets {
			b.WriteString("\r\n ")
			n = 1
		}
		b.WriteString(line[i : i+size])
		n += size
		i += size
	}
	b.WriteString("\r\n")
}

// FileName is the calendar file of a tenant: its name with anything but
// letters, digits, '-', '_' and '.' (spaces) as '_', and no leading '.',
// so that it is one plain file in the directory.
func FileName(tenant string) string {
	name := strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, tenant)
	if strings.HasPrefix(name, ".") || name == "" {
		name = "_" + strings.TrimPrefix(name, ".")
	}
	return name + ".ics"
}

// FileNames names the calendar of every tenant of the schedule. Two
// tenants whose file names differ only in case or in what FileName
// replaced are refused: one file would overwrite the other, on file
// systems that ignore case too.
func (s *Schedule) FileNames() (map[string]string, error) {
	names := map[string]string{}
	owner := map[string]string{} // folded file name → tenant
	for _, t := range s.Tenants {
		f := FileName(t.Name)
		key := strings.ToLower(f)
		if other, dup := owner[key]; dup {
			return nil, fmt.Errorf("tenants %q and %q would both be written to %s: rename one in the inventory", other, t.Name, f)
		}
		owner[key] = t.Name
		names[t.Name] = f
	}
	return names, nil
}

// WriteICalDir writes every tenant's calendar into dir (created if need
// be), as FileName, and returns the files written, in tenant order. It
// checks every name before it writes a file.
func (s *Schedule) WriteICalDir(dir string) ([]string, error) {
	if s.Start.IsZero() {
		return nil, ErrNoStart
	}
	names, err := s.FileNames()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("write calendars: %w", err)
	}
	var files []string
	for _, t := range s.Tenants {
		var b strings.Builder
		if err := s.WriteICal(&b, t); err != nil {
			return files, err
		}
		path := filepath.Join(dir, names[t.Name])
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			return files, fmt.Errorf("write calendar of %s: %w", t.Name, err)
		}
		files = append(files, path)
	}
	return files, nil
}
