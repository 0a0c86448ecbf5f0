package schedule

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cutover/cutover/cutover/runbook"
	"github.com/cutover/cutover/internal/words"
)

// clockLayout is how clock times are written for people; the zone is
// named once, in the header.
const clockLayout = "2006-01-02 15:04:05"

// firstVMs is how many VM names a line of text shows.
const firstVMs = 3

// floorSec and ceilSec round a window outward to whole seconds, so that a
// rounded window never promises less than the measured one.
func floorSec(d time.Duration) time.Duration { return d.Truncate(time.Second) }

func ceilSec(d time.Duration) time.Duration {
	if t := d.Truncate(time.Second); t != d {
		return t + time.Second
	}
	return d
}

// Offset writes a time from the run's start as +h:mm:ss, in whole seconds
// (rounded down).
func Offset(d time.Duration) string {
	s := int64(floorSec(d) / time.Second)
	return fmt.Sprintf("+%d:%02d:%02d", s/3600, s%3600/60, s%60)
}

// from and to are the batch's window rounded outward.
func (b *Batch) from() time.Duration { return floorSec(b.StartMin) }
func (b *Batch) to() time.Duration   { return ceilSec(b.EndMax) }

// Source is where the batch's window comes from: "3 rehearsals" or
// "estimate".
func (b *Batch) Source() string {
	switch b.Rehearsed {
	case 0:
		return "estimate"
	case 1:
		return "1 rehearsal"
	}
	return fmt.Sprintf("%d rehearsals", b.Rehearsed)
}

// At is the clock time of an offset; zero without a start.
func (s *Schedule) At(d time.Duration) time.Time {
	if s.Start.IsZero() {
		return time.Time{}
	}
	return s.Start.Add(d).In(s.Loc)
}

// clockSpan writes a window in clock time: "2026-12-03 23:00:00 – 23:01:34",
// with the end's date when it differs.
func (s *Schedule) clockSpan(from, to time.Duration) string {
	a, b := s.At(from), s.At(to)
	end := b.Format(time.TimeOnly)
	if a.Format(time.DateOnly) != b.Format(time.DateOnly) {
		end = b.Format(clockLayout)
	}
	return a.Format(clockLayout) + " – " + end
}

// zoneName names the zone of clock times: "Europe/Oslo", "UTC+01:00".
func (s *Schedule) zoneName() string {
	if s.Loc == nil {
		return ""
	}
	return s.Loc.String()
}

// estimated reports whether any batch's window is estimated.
func (s *Schedule) estimated() bool {
	for _, b := range s.Batches {
		if b.Rehearsed == 0 {
			return true
		}
	}
	return false
}

// span is a tenant's first start and last end.
func (t *Tenant) span() (from, to time.Duration) {
	for i, p := range t.Batches {
		if i == 0 || p.Batch.from() < from {
			from = p.Batch.from()
		}
		to = max(to, p.Batch.to())
	}
	return from, to
}

// WriteText writes the schedules for people: a header that says where
// the times come from, then per tenant a line per batch: window, batch,
// VMs, where the window comes from, the go/no-go point it follows, and
// the first VMs.
func (s *Schedule) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	s.writeHeader(bw)
	for _, t := range s.Tenants {
		fmt.Fprintln(bw)
		s.writeTenant(bw, t)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write schedule: %w", err)
	}
	return nil
}

func (s *Schedule) writeHeader(w io.Writer) {
	pl, rb := s.Plan, s.Plan.Runbook
	row := func(k, format string, args ...any) { fmt.Fprintf(w, "%-10s %s\n", k, fmt.Sprintf(format, args...)) }
	vms, _, _, _ := pl.Totals()
	fmt.Fprintf(w, "tenant schedule of %s (%s): %s -> %s\n", rb.Name, rb.File, rb.Move.From, rb.Move.To)
	row("plan", "digest %s, %d batches, %d VMs of %d tenants", pl.Digest, len(pl.Batches), vms, len(pl.Inventory.Tenants()))
	if s.Selected() {
		names := make([]string, len(s.Tenants))
		for i, t := range s.Tenants {
			names[i] = t.Name
		}
		row("tenants", "%s only", strings.Join(names, ", "))
	}
	if s.Times.Measured() {
		row("times", "%s, in %s: a window runs from the rehearsals' earliest start of the batch to their latest commit", s.Times, s.Times.Dir)
	} else {
		row("times", "%s", s.Times)
	}
	if s.estimated() {
		row("estimate", "%s", s.Times.Estimate)
	}
	switch s.StartFrom {
	case "":
		row("start", "not known: times are offsets from the run's start (--start, or a change window in the runbook, gives clock times)")
	case StartGiven:
		row("start", "%s %s (as given)", s.Start.In(s.Loc).Format(clockLayout), s.zoneName())
	default:
		row("start", "%s %s (%s)", s.Start.In(s.Loc).Format(clockLayout), s.zoneName(), s.StartFrom)
	}
	if rb.Window != nil {
		if s.WindowClose.IsZero() {
			row("window", "%s", rb.Window)
		} else {
			row("window", "%s: open %s", rb.Window, s.clockSpan(s.WindowOpen.Sub(s.Start), s.WindowClose.Sub(s.Start)))
		}
	}
	if g := s.GoPoints(); g != "" {
		row("go/no-go", "%s", g)
	}
	for _, n := range s.Notes {
		row("note", "%s", n)
	}
}

func (s *Schedule) writeTenant(w io.Writer, t *Tenant) {
	from, to := t.span()
	fmt.Fprintf(w, "%s: %s, %s, in %s, %s – %s", t.Name, words.Plural(t.VMs, "VM"), words.Plural(t.Addresses, "address"), words.Plural(len(t.Batches), "batch"), Offset(from), Offset(to))
	if !s.Start.IsZero() {
		fmt.Fprintf(w, " (%s)", s.clockSpan(from, to))
	}
	fmt.Fprintln(w)
	head := []string{"WINDOW"}
	if !s.Start.IsZero() {
		head = append(head, "CLOCK ("+s.zoneName()+")")
	}
	head = append(head, "#", "BATCH", "VMS", "ADDRS", "TIMES", "AFTER GO AT", "FIRST VMS")
	rows := [][]string{head}
	for _, p := range t.Batches {
		b := p.Batch
		r := []string{Offset(b.from()) + " – " + Offset(b.to())}
		if !s.Start.IsZero() {
			r = append(r, s.clockSpan(b.from(), b.to()))
		}
		after := b.AfterGo
		if after == "" {
			after = "-"
		}
		source := b.Source()
		if b.PastClose {
			source += ", may miss window"
		}
		r = append(r, strconv.Itoa(b.Index), b.Name, strconv.Itoa(len(p.VMs)), strconv.Itoa(p.Addresses), source, after, firstNames(p.VMs))
		rows = append(rows, r)
	}
	numeric := map[int]bool{slices.Index(head, "#"): true, slices.Index(head, "VMS"): true, slices.Index(head, "ADDRS"): true}
	writeTable(w, rows, numeric)
}

// firstNames names the first VMs: "a, b, c and 77 more".
func firstNames(vms []*runbook.VM) string {
	n := min(len(vms), firstVMs)
	names := make([]string, n)
	for i := range n {
		names[i] = vms[i].Name
	}
	s := strings.Join(names, ", ")
	if len(vms) > n {
		s += fmt.Sprintf(" and %d more", len(vms)-n)
	}
	return s
}

// writeTable writes rows indented by two, columns apart by two spaces,
// the numeric ones right-aligned, the last one not padded.
func writeTable(w io.Writer, rows [][]string, numeric map[int]bool) {
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		b.WriteString("  ")
		for i, c := range r {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			switch {
			case numeric[i]:
				b.WriteString(pad + c)
			case i == len(r)-1:
				b.WriteString(c)
			default:
				b.WriteString(c + pad)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// csvHeader are the CSV columns: one row per tenant and batch. Part of
// the CLI's contract: add at the end, never rename.
var csvHeader = []string{"tenant", "batch_index", "batch", "canary", "vms", "addresses",
	"from_offset", "to_offset", "from_offset_s", "to_offset_s", "from", "to",
	"times", "rehearsals", "after_go", "after_window_close", "vm_names"}

// WriteCSV writes one row per tenant and batch (RFC 4180), after a header
// row; offsets in seconds and as +h:mm:ss, clock times in RFC 3339 when
// the start is known (else empty), the VMs' names apart by spaces.
func (s *Schedule) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true // RFC 4180
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("write schedule: %w", err)
	}
	for _, t := range s.Tenants {
		for _, p := range t.Batches {
			b := p.Batch
			names := make([]string, len(p.VMs))
			for i, vm := range p.VMs {
				names[i] = vm.Name
			}
			from, to := s.clockRFC(b.from()), s.clockRFC(b.to())
			rec := []string{t.Name, strconv.Itoa(b.Index), b.Name, strconv.FormatBool(b.Canary),
				strconv.Itoa(len(p.VMs)), strconv.Itoa(p.Addresses),
				Offset(b.from()), Offset(b.to()), seconds(b.from()), seconds(b.to()), from, to,
				timesWord(b), strconv.Itoa(b.Rehearsed), b.AfterGo, strconv.FormatBool(b.PastClose), strings.Join(names, " ")}
			if err := cw.Write(rec); err != nil {
				return fmt.Errorf("write schedule: %w", err)
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write schedule: %w", err)
	}
	return nil
}

// timesWord is "rehearsals" or "estimate": the machine form of Source.
func timesWord(b *Batch) string {
	if b.Rehearsed > 0 {
		return "rehearsals"
	}
	return "estimate"
}

func seconds(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }

// clockRFC is an offset's clock time in RFC 3339; "" without a start.
func (s *Schedule) clockRFC(d time.Duration) string {
	if s.Start.IsZero() {
		return ""
	}
	return s.At(d).Format(time.RFC3339)
}

// The JSON form of a schedule, for tools. Field names are part of the
// CLI's contract: add, never rename. Offsets are whole seconds from the
// run's start (a window rounded outward); clock times RFC 3339, absent
// without a start.
type (
	scheduleJSON struct {
		Runbook         string       `json:"runbook"`
		Name            string       `json:"name"`
		Digest          string       `json:"digest"`
		RunbookDigest   string       `json:"runbook_digest"`
		InventoryDigest string       `json:"inventory_digest"`
		Move            runbook.Move `json:"move"`
		Times           timesJSON    `json:"times"`
		Start           string       `json:"start,omitempty"`
		StartFrom       string       `json:"start_from,omitempty"`
		Timezone        string       `json:"timezone,omitempty"`
		Window          *windowJSON  `json:"window,omitempty"`
		GoPoints        []goJSON     `json:"go_points"`
		// PromptAnswers says that the windows assume every go/no-go point
		// is answered at once (always true: stated for readers of the
		// JSON alone).
		PromptAnswers bool         `json:"assumes_prompt_answers"`
		Batches       []batchJSON  `json:"batches"`
		Tenants       []tenantJSON `json:"tenants"`
		Notes         []string     `json:"notes"`
	}
	timesJSON struct {
		Source     string          `json:"source"` // "rehearsals" or "estimate"
		Text       string          `json:"text"`
		Dir        string          `json:"dir,omitempty"`
		Rehearsals []rehearsalJSON `json:"rehearsals"`
		Estimate   estimateJSON    `json:"estimate"`
	}
	rehearsalJSON struct {
		Rehearsed string   `json:"rehearsed"`
		Host      string   `json:"host,omitempty"`
		Faults    []string `json:"faults,omitempty"`
	}
	estimateJSON struct {
		LeastS    int64  `json:"least_s"`
		ReadyS    int64  `json:"ready_s"`
		ConvergeS int64  `json:"converge_s"`
		GatesS    int64  `json:"gates_s"`
		HoldS     int64  `json:"hold_s"`
		Rule      string `json:"rule"`
	}
	windowJSON struct {
		Start    string `json:"start"`
		End      string `json:"end"`
		Timezone string `json:"timezone"`
		Open     string `json:"open,omitempty"`
		Close    string `json:"close,omitempty"`
	}
	goJSON struct {
		Point string `json:"point"`
		// BeforeBatch is the index of the batch the run waits before; nil:
		// after the last batch.
		BeforeBatch *int `json:"before_batch"`
	}
	batchJSON struct {
		Index      int    `json:"index"`
		Name       string `json:"name"`
		Canary     bool   `json:"canary"`
		VMs        int    `json:"vms"`
		FromS      int64  `json:"from_s"`
		ToS        int64  `json:"to_s"`
		StartMinS  int64  `json:"start_min_s"`
		StartMaxS  int64  `json:"start_max_s"`
		EndMinS    int64  `json:"end_min_s"`
		EndMaxS    int64  `json:"end_max_s"`
		From       string `json:"from,omitempty"`
		To         string `json:"to,omitempty"`
		Source     string `json:"source"` // "rehearsals" or "estimate"
		Rehearsals int    `json:"rehearsals"`
		AfterGo    string `json:"after_go,omitempty"`
		PastClose  bool   `json:"after_window_close,omitempty"`
	}
	tenantJSON struct {
		Tenant    string     `json:"tenant"`
		VMs       int        `json:"vms"`
		Addresses int        `json:"addresses"`
		FromS     int64      `json:"from_s"`
		ToS       int64      `json:"to_s"`
		From      string     `json:"from,omitempty"`
		To        string     `json:"to,omitempty"`
		Batches   []partJSON `json:"batches"`
	}
	partJSON struct {
		Index     int      `json:"index"`
		Name      string   `json:"name"`
		VMs       []string `json:"vms"`
		Addresses int      `json:"addresses"`
		FromS     int64    `json:"from_s"`
		ToS       int64    `json:"to_s"`
		From      string   `json:"from,omitempty"`
		To        string   `json:"to,omitempty"`
		Source    string   `json:"source"`
		AfterGo   string   `json:"after_go,omitempty"`
	}
)

func secs(d time.Duration) int64 { return int64(d / time.Second) }

// WriteJSON writes the schedules for tools. Equal schedules give equal
// bytes.
func (s *Schedule) WriteJSON(w io.Writer) error {
	pl, rb := s.Plan, s.Plan.Runbook
	e := s.Times.Estimate
	out := scheduleJSON{
		Runbook: rb.File, Name: rb.Name, Digest: pl.Digest, RunbookDigest: rb.Digest, InventoryDigest: pl.Inventory.Digest,
		Move: rb.Move,
		Times: timesJSON{Source: "estimate", Text: s.Times.String(), Dir: s.Times.Dir, Rehearsals: []rehearsalJSON{},
			Estimate: estimateJSON{LeastS: secs(e.Least), ReadyS: secs(e.Ready), ConvergeS: secs(e.Converge), GatesS: secs(e.Gates),
				HoldS: secs(e.Hold), Rule: e.String()}},
		StartFrom: s.StartFrom, Timezone: s.zoneName(), GoPoints: []goJSON{}, PromptAnswers: true,
		Batches: []batchJSON{}, Tenants: []tenantJSON{}, Notes: nonNil(s.Notes),
	}
	if s.Times.Measured() {
		out.Times.Source = "rehearsals"
	}
	for _, r := range s.Times.Rehearsals {
		out.Times.Rehearsals = append(out.Times.Rehearsals, rehearsalJSON{Rehearsed: r.Rehearsed.UTC().Format(time.RFC3339), Host: r.Host, Faults: r.Faults})
	}
	if !s.Start.IsZero() {
		out.Start = s.Start.In(s.Loc).Format(time.RFC3339)
	}
	if w := rb.Window; w != nil {
		out.Window = &windowJSON{Start: w.Start, End: w.End, Timezone: w.Timezone}
		if !s.WindowOpen.IsZero() {
			out.Window.Open, out.Window.Close = s.WindowOpen.In(s.Loc).Format(time.RFC3339), s.WindowClose.In(s.Loc).Format(time.RFC3339)
		}
	}
	for _, b := range pl.Batches {
		for _, c := range b.Confirm {
			out.GoPoints = append(out.GoPoints, goJSON{Point: c, BeforeBatch: &b.Index})
		}
	}
	for _, c := range pl.ConfirmEnd {
		out.GoPoints = append(out.GoPoints, goJSON{Point: c})
	}
	for _, b := range s.Batches {
		out.Batches = append(out.Batches, batchJSON{Index: b.Index, Name: b.Name, Canary: b.Canary, VMs: b.VMs,
			FromS: secs(b.from()), ToS: secs(b.to()),
			StartMinS: secs(floorSec(b.StartMin)), StartMaxS: secs(floorSec(b.StartMax)),
			EndMinS: secs(ceilSec(b.EndMin)), EndMaxS: secs(ceilSec(b.EndMax)),
			From: s.clockRFC(b.from()), To: s.clockRFC(b.to()),
			Source: timesWord(b), Rehearsals: b.Rehearsed, AfterGo: b.AfterGo, PastClose: b.PastClose})
	}
	for _, t := range s.Tenants {
		from, to := t.span()
		tj := tenantJSON{Tenant: t.Name, VMs: t.VMs, Addresses: t.Addresses, FromS: secs(from), ToS: secs(to),
			From: s.clockRFC(from), To: s.clockRFC(to), Batches: []partJSON{}}
		for _, p := range t.Batches {
			b := p.Batch
			pj := partJSON{Index: b.Index, Name: b.Name, VMs: make([]string, len(p.VMs)), Addresses: p.Addresses,
				FromS: secs(b.from()), ToS: secs(b.to()), From: s.clockRFC(b.from()), To: s.clockRFC(b.to()),
				Source: timesWord(b), AfterGo: b.AfterGo}
			for i, vm := range p.VMs {
				pj.VMs[i] = vm.Name
			}
			tj.Batches = append(tj.Batches, pj)
		}
		out.Tenants = append(out.Tenants, tj)
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write schedule: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write schedule: %w", err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
