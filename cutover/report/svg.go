package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	"github.com/cutover/cutover/cutover/engine"
)

// Colors of the timeline, also used by the HTML legend.
const (
	colAnnounce = "#4c78a8"
	colConverge = "#9d7cc1"
	colGate     = "#f2a541"
	colTarget   = "#54a24b"
	colRollback = "#d62728"
	colGrid     = "#e3e6ea"
	colText     = "#222"
	colMuted    = "#6c757d"
)

// Layout of the picture, in pixels.
const (
	svgW     = 960
	svgX0    = 210 // left edge of the plot; labels are left of it
	svgX1    = 940
	rowsTop  = 56
	rowH     = 20
	barH     = 12
	areaH    = 110
	areaGap  = 28
	maxLabel = 26 // characters of a batch name shown
)

// SVG returns the timeline picture as a standalone SVG document: batches
// over time as horizontal bars (announce, converge, gate, time at the
// target, rollback), the VMs at the target as an area, and rollbacks
// marked in red.
func (r *Report) SVG() []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	r.writeSVG(&b, true)
	return b.Bytes()
}

// segment is a stretch of a batch's bar.
type segment struct {
	kind     string
	color    string
	from, to time.Time
	thin     bool
}

// segments cuts a batch's life into the stretches the picture shows.
func (b *Batch) segments(since, until time.Time) []segment {
	var out []segment
	add := func(kind, color string, from, to time.Time, thin bool) {
		if from.IsZero() || to.IsZero() || to.Before(from) {
			return
		}
		out = append(out, segment{kind, color, from, to, thin})
	}
	rollback := func() {
		if !b.RollbackStart.IsZero() {
			end := b.RolledBack
			if end.IsZero() || end.Before(b.RollbackStart) {
				end = until
			}
			add("rollback", colRollback, b.RollbackStart, end, false)
		}
	}
	if b.Started.IsZero() {
		if b.Earlier {
			end := until
			if !b.RollbackStart.IsZero() {
				end = b.RollbackStart
			}
			add("at-target", colTarget, since, end, true)
			rollback()
		}
		return out
	}
	// The end of the batch's move: its decision, the start of its
	// rollback, or now.
	moveEnd := b.Decided
	if moveEnd.IsZero() || moveEnd.Before(b.Started) {
		moveEnd = b.RollbackStart
	}
	if moveEnd.IsZero() {
		moveEnd = until
	}
	first := func(ts ...time.Time) time.Time {
		for _, t := range ts {
			if !t.IsZero() && !t.Before(b.Started) {
				return t
			}
		}
		return time.Time{}
	}
	announced := first(b.Announced)
	converged := first(b.Converged)
	add("announce", colAnnounce, b.Started, first(announced, moveEnd), false)
	if !announced.IsZero() {
		add("converge", colConverge, announced, first(converged, moveEnd), false)
	}
	if !converged.IsZero() {
		add("gate", colGate, converged, moveEnd, false)
	}
	// Committed, possibly rolled back later by a person.
	committed := b.Phase == engine.BatchCommitted ||
		(b.Decided.Before(b.RollbackStart) && len(b.Gates) > 0 && b.Gates[len(b.Gates)-1].Pass)
	if committed {
		atTargetEnd := until
		if !b.RollbackStart.IsZero() && b.RollbackStart.After(b.Decided) {
			atTargetEnd = b.RollbackStart
		}
		add("at-target", colTarget, b.Decided, atTargetEnd, true)
	}
	rollback()
	return out
}

// writeSVG writes the <svg> element. standalone adds the namespace, which
// inline SVG in HTML does not need (and the page carries no URL at all).
func (r *Report) writeSVG(w *bytes.Buffer, standalone bool) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	t0, t1 := r.Started, r.Until
	if !t1.After(t0) {
		t1 = t0.Add(time.Second)
	}
	span := t1.Sub(t0)
	x := func(t time.Time) float64 {
		if t.Before(t0) {
			t = t0
		}
		if t.After(t1) {
			t = t1
		}
		return svgX0 + float64(t.Sub(t0))/float64(span)*(svgX1-svgX0)
	}
	n := len(r.Batches)
	areaTop := rowsTop + n*rowH + areaGap
	axisY := areaTop + areaH
	h := axisY + 44

	ns := ""
	if standalone {
		ns = ` xmlns="http://www.w3.org/2000/svg"`
	}
	label := fmt.Sprintf("Timeline of run %s: %d batches, %d committed, %d rolled back", r.RunID, n, r.Totals.Committed, r.Totals.RolledBack)
	p(`<svg%s class="timeline" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s" font-family="sans-serif" font-size="11">`+"\n",
		ns, svgW, h, svgW, h, esc(label))
	p("<title>%s</title>\n", esc(label))
	p(`<rect x="0" y="0" width="%d" height="%d" fill="#fff"/>`+"\n", svgW, h)
	p(`<text x="10" y="18" font-size="13" font-weight="bold" fill="%s">%s</text>`+"\n", colText, esc(shorten(r.Runbook+" — run "+r.RunID, 110)))

	// Legend.
	lx := 10.0
	for _, l := range []struct{ name, color string }{
		{"announce", colAnnounce}, {"converge", colConverge}, {"gate", colGate},
		{"at the target", colTarget}, {"rollback", colRollback},
	} {
		p(`<rect x="%.1f" y="28" width="10" height="10" fill="%s"/><text x="%.1f" y="37" fill="%s">%s</text>`+"\n", lx, l.color, lx+14, colText, l.name)
		lx += 14 + float64(len(l.name))*6.5 + 16
	}

	// Time grid and axis.
	step := tickStep(span)
	first := t0.Truncate(step)
	if first.Before(t0) {
		first = first.Add(step)
	}
	p(`<g class="axis">` + "\n")
	for t := first; !t.After(t1); t = t.Add(step) {
		xt := x(t)
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`, xt, rowsTop-6, xt, axisY, colGrid)
		p(`<text x="%.1f" y="%d" text-anchor="middle" fill="%s">%s</text>`+"\n", xt, axisY+16, colMuted, t.UTC().Format(tickFormat(step)))
	}
	p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`+"\n", svgX0, axisY, svgX1, axisY, colMuted)
	p(`<text x="%d" y="%d" text-anchor="end" fill="%s">UTC</text>`+"\n", svgX1, axisY+32, colMuted)
	p("</g>\n")

	// One row per batch.
	for i, b := range r.Batches {
		y := rowsTop + i*rowH
		p(`<g class="batch" data-batch="%d">`+"\n", b.Index)
		p(`<text x="%d" y="%d" text-anchor="end" fill="%s">%d %s</text>`+"\n", svgX0-8, y+barH-2, colText, b.Index, esc(shorten(b.Name, maxLabel)))
		segs := b.segments(r.Started, r.Until)
		if len(segs) == 0 {
			p(`<text x="%d" y="%d" fill="%s">%s</text>`+"\n", svgX0+4, y+barH-2, colMuted, esc(string(b.Phase)))
			p("</g>\n")
			continue
		}
		start, end := x(segs[0].from), x(segs[0].to)
		for _, s := range segs {
			end = max(end, x(s.to))
		}
		p(`<rect class="bar" x="%.1f" y="%d" width="%.1f" height="%d" fill="#f6f7f9" stroke="#c9ced4" stroke-width="0.5"><title>%s</title></rect>`+"\n",
			start, y, max(end-start, 1.5), barH, esc(fmt.Sprintf("batch %d %s: %s, %d VMs", b.Index, b.Name, b.Phase, b.VMs)))
		for _, s := range segs {
			sy, sh := float64(y), float64(barH)
			if s.thin {
				sy, sh = float64(y)+float64(barH)/2-2, 4
			}
			p(`<rect class="seg seg-%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
				s.kind, x(s.from), sy, max(x(s.to)-x(s.from), 1.5), sh, s.color,
				esc(fmt.Sprintf("batch %d %s: %s %s, %s–%s", b.Index, b.Name, s.kind, engine.Human(s.to.Sub(s.from)), clock(s.from), clock(s.to))))
		}
		p("</g>\n")
	}

	// VMs at the target.
	top := r.Totals.VMs
	for _, pt := range r.Moved {
		top = max(top, pt.VMs)
	}
	top = max(top, 1)
	y := func(v int) float64 { return float64(axisY) - float64(v)/float64(top)*areaH }
	p(`<g class="moved">` + "\n")
	p(`<text x="%d" y="%d" text-anchor="end" fill="%s">VMs at the target</text>`+"\n", svgX0-8, areaTop+areaH/2, colText)
	p(`<text x="%d" y="%.1f" text-anchor="end" fill="%s">%d</text>`+"\n", svgX0-4, y(top)+4, colMuted, top)
	p(`<text x="%d" y="%.1f" text-anchor="end" fill="%s">0</text>`+"\n", svgX0-4, y(0), colMuted)
	p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-dasharray="2 3"/>`+"\n", svgX0, y(top), svgX1, y(top), colGrid)
	var path strings.Builder
	fmt.Fprintf(&path, "M%.1f %.1f", x(t0), y(0))
	for _, pt := range r.Moved {
		fmt.Fprintf(&path, " H%.1f V%.1f", x(pt.Time), y(pt.VMs))
	}
	fmt.Fprintf(&path, " H%.1f V%.1f Z", x(t1), y(0))
	last := 0
	if len(r.Moved) > 0 {
		last = r.Moved[len(r.Moved)-1].VMs
	}
	p(`<path class="moved-area" d="%s" fill="%s" fill-opacity="0.25" stroke="%s" stroke-width="1.5"><title>%s</title></path>`+"\n",
		path.String(), colTarget, colTarget, esc(fmt.Sprintf("VMs at the target: %d of %d at the end", last, r.Totals.VMs)))
	p("</g>\n")

	// Rollbacks across everything.
	for _, rb := range r.Rollbacks {
		xr := x(rb.Time)
		p(`<g class="rollback"><title>%s</title>`, esc(fmt.Sprintf("rollback %s at %s by %s: %s", batchList(rb), clock(rb.Time), rb.By, rb.Reason)))
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="1.2" stroke-dasharray="4 3"/>`, xr, rowsTop-6, xr, axisY, colRollback)
		p(`<path d="M%.1f %d l-5 -8 h10 Z" fill="%s"/>`, xr, rowsTop-6, colRollback)
		p("</g>\n")
	}
	p("</svg>\n")
}

// tickStep picks a round step that gives at most ten ticks.
func tickStep(span time.Duration) time.Duration {
	for _, s := range []time.Duration{
		time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	} {
		if span/s <= 10 {
			return s
		}
	}
	return 24 * time.Hour
}

func tickFormat(step time.Duration) string {
	if step%time.Minute == 0 {
		return "15:04"
	}
	return "15:04:05"
}

// esc escapes text for XML character data and attribute values.
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// shorten cuts s to n runes with an ellipsis.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
