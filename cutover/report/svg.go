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
	colHeld     = "#c99a06"
	colWait     = "#7d8a99"
	colRetry    = "#1f5f99"
	colGrid     = "#e3e6ea"
	colText     = "#222"
	colMuted    = "#6c757d"
)

// Layout of the picture, in pixels.
const (
	svgW     = 960
	svgX0    = 210 // left edge of the plot; labels are left of it
	svgX1    = 940
	rowsTop  = 84 // below the legend and two lanes of wait labels
	rowH     = 20
	barH     = 12
	rbLanes  = 38 // under the rows: two lanes of rollback labels
	areaH    = 120
	maxLabel = 26 // characters of a batch name shown
	charW    = 6  // width of a character of the labels, about
)

// SVG returns the timeline picture as a standalone SVG document: batches
// over time as horizontal bars (readiness check, announce, converge,
// gate, time at the target, rollback) with held batches and retries
// marked, waits for a person (go/no-go points, pauses) as labelled bands,
// rollbacks as red lines that say who rolled back and how long it took,
// and the VMs at the target as an area with a scale.
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
	// took is the duration the title gives; zero: to - from.
	took time.Duration
	note string
}

// segments cuts a try that ended in phase into the stretches the picture
// shows; earlier marks a batch at the target from since on (moved by an
// earlier run). until ends what is still going on.
func (t Try) segments(phase engine.BatchPhase, earlier bool, since, until time.Time) []segment {
	var out []segment
	add := func(s segment) {
		if s.from.IsZero() || s.to.IsZero() || s.to.Before(s.from) {
			return
		}
		out = append(out, s)
	}
	rollback := func() {
		if t.RollbackStart.IsZero() {
			return
		}
		end := t.RolledBack
		if end.IsZero() || end.Before(t.RollbackStart) {
			end = until
		}
		note := ""
		if t.RollbackBy != "" {
			note = "by " + t.RollbackBy
		}
		add(segment{kind: "rollback", color: colRollback, from: t.RollbackStart, to: end, took: t.RollbackTook, note: note})
	}
	for k, rr := range t.Reruns {
		next := t.Started
		if k+1 < len(t.Reruns) {
			next = t.Reruns[k+1].Started
		}
		out = append(out, rr.segments(next)...)
	}
	if t.Started.IsZero() {
		if earlier {
			end := until
			if !t.RollbackStart.IsZero() {
				end = t.RollbackStart
			}
			add(segment{kind: "at-target", color: colTarget, from: since, to: end, thin: true})
			rollback()
		}
		return out
	}
	// The end of the batch's move: its decision, the start of its
	// rollback, or now.
	moveEnd := t.Decided
	if moveEnd.IsZero() || moveEnd.Before(t.Started) {
		moveEnd = t.RollbackStart
	}
	if moveEnd.IsZero() {
		moveEnd = until
	}
	first := func(ts ...time.Time) time.Time {
		for _, x := range ts {
			if !x.IsZero() && !x.Before(t.Started) {
				return x
			}
		}
		return time.Time{}
	}
	announced := first(t.Announced)
	converged := first(t.Converged)
	add(segment{kind: "announce", color: colAnnounce, from: t.Started, to: first(announced, moveEnd)})
	if !announced.IsZero() {
		add(segment{kind: "converge", color: colConverge, from: announced, to: first(converged, moveEnd)})
	}
	if !converged.IsZero() {
		add(segment{kind: "gate", color: colGate, from: converged, to: moveEnd})
	}
	// Committed, possibly rolled back later by a person.
	committed := phase == engine.BatchCommitted ||
		(!t.Decided.IsZero() && !t.RollbackStart.IsZero() && t.Decided.Before(t.RollbackStart))
	if committed {
		atTargetEnd := until
		if !t.RollbackStart.IsZero() && t.RollbackStart.After(t.Decided) {
			atTargetEnd = t.RollbackStart
		}
		add(segment{kind: "at-target", color: colTarget, from: t.Decided, to: atTargetEnd, thin: true})
	}
	rollback()
	return out
}

// segments cuts an earlier start of a try, up to the next start, into
// stretches: announce, converge, gate and, after its gates failed, the
// wait at the target until the batch was started again.
func (rr Rerun) segments(next time.Time) []segment {
	var out []segment
	end := func(ts ...time.Time) time.Time {
		for _, x := range ts {
			if !x.IsZero() && !x.Before(rr.Started) && !x.After(next) {
				return x
			}
		}
		return next
	}
	add := func(s segment) {
		if !s.from.IsZero() && !s.to.Before(s.from) {
			out = append(out, s)
		}
	}
	announced, converged, failed := end(rr.Announced), end(rr.Converged), end(rr.Failed)
	add(segment{kind: "announce", color: colAnnounce, from: rr.Started, to: announced})
	if !rr.Announced.IsZero() {
		add(segment{kind: "converge", color: colConverge, from: announced, to: converged})
	}
	if !rr.Converged.IsZero() {
		add(segment{kind: "gate", color: colGate, from: converged, to: failed, note: "failed"})
	}
	if !rr.Failed.IsZero() {
		add(segment{kind: "waiting", color: colWait, from: failed, to: next, thin: true, note: "at the target after failed gates"})
	}
	return out
}

// segments are every stretch of the batch's bar: its readiness checks
// that held it, and each try.
func (b *Batch) segments(since, until time.Time) []segment {
	var out []segment
	for _, g := range b.Gates {
		if g.Ready && !g.Pass {
			out = append(out, segment{kind: "ready", color: colHeld, from: g.Time.Add(-g.Took), to: g.Time, note: "not ready"})
		}
	}
	for k, t := range b.Retries {
		out = append(out, t.Try.segments(t.Phase, b.Earlier && k == 0, since, t.RetryAt)...)
	}
	return append(out, b.Try.segments(b.Phase, b.Earlier && len(b.Retries) == 0, since, until)...)
}

// marker is a point on a batch's row: a hold or a retry.
type marker struct {
	kind  string // "held" or "retry"
	at    time.Time
	title string
}

// markers are the batch's holds and retries.
func (b *Batch) markers() []marker {
	var out []marker
	held := func(at time.Time, reason string) {
		out = append(out, marker{"held", at, fmt.Sprintf("%s held at %s, never moved: %s", b.ref(), clock(at), reason)})
	}
	for _, t := range b.Retries {
		if t.Phase == engine.BatchHeld {
			held(t.Decided, t.Reason)
		}
		out = append(out, marker{"retry", t.RetryAt, fmt.Sprintf("%s retried by %s at %s", b.ref(), t.RetryBy, clock(t.RetryAt))})
	}
	if b.Phase == engine.BatchHeld && !b.Decided.IsZero() {
		held(b.Decided, b.Reason)
	}
	return out
}

// svgScale maps times to x.
type svgScale struct{ t0, t1 time.Time }

func (s svgScale) x(t time.Time) float64 {
	if t.Before(s.t0) {
		t = s.t0
	}
	if t.After(s.t1) {
		t = s.t1
	}
	return svgX0 + float64(t.Sub(s.t0))/float64(s.t1.Sub(s.t0))*(svgX1-svgX0)
}

// lanes place labels side by side on a few lines without overlap.
type lanes struct {
	y   []int
	end []float64
}

func newLanes(ys ...int) *lanes { return &lanes{y: ys, end: make([]float64, len(ys))} }

// place returns where a label of n characters starting at x goes: its x,
// its anchor, its line and the text cut to fit.
func (l *lanes) place(x float64, text string) (float64, string, int, string) {
	w := float64(len([]rune(text))*charW) + 8
	anchor := "start"
	start := x + 3
	if start+w > svgX1 {
		anchor, start, x = "end", svgX1-w, svgX1
	} else {
		x = start
	}
	best := 0
	for k := range l.y {
		if l.end[k] <= start {
			best = k
			break
		}
		if l.end[k] < l.end[best] {
			best = k
		}
	}
	if l.end[best] > start { // every lane is taken here: a short label
		text = shorten(text, 14)
		w = float64(len([]rune(text))*charW) + 8
	}
	l.end[best] = start + w
	return x, anchor, l.y[best], text
}

// writeSVG writes the <svg> element. standalone adds the namespace, which
// inline SVG in HTML does not need (and the page carries no URL at all).
func (r *Report) writeSVG(w *bytes.Buffer, standalone bool) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	t0, t1 := r.Started, r.Until
	if !t1.After(t0) {
		t1 = t0.Add(time.Second)
	}
	sc := svgScale{t0, t1}
	n := len(r.Batches)
	rowsEnd := rowsTop + n*rowH
	areaTop := rowsEnd + rbLanes
	axisY := areaTop + areaH
	h := axisY + 44

	ns := ""
	if standalone {
		ns = ` xmlns="http://www.w3.org/2000/svg"`
	}
	label := fmt.Sprintf("Timeline of run %s: %d batches, %d committed", r.RunID, n, r.Totals.Committed)
	if left := r.atSourceList(); left != "" {
		label += "; left at the source: " + left
	}
	p(`<svg%s class="timeline" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s" font-family="sans-serif" font-size="11">`+"\n",
		ns, svgW, h, svgW, h, esc(label))
	p("<title>%s</title>\n", esc(label))
	p(`<rect x="0" y="0" width="%d" height="%d" fill="#fff"/>`+"\n", svgW, h)
	p(`<text x="10" y="18" font-size="13" font-weight="bold" fill="%s">%s</text>`+"\n", colText, esc(shorten(r.Runbook+" — run "+r.RunID, 110)))
	writeLegend(p)

	// Time grid and axis.
	span := t1.Sub(t0)
	step := tickStep(span)
	first := t0.Truncate(step)
	if first.Before(t0) {
		first = first.Add(step)
	}
	p(`<g class="axis">` + "\n")
	for t := first; !t.After(t1); t = t.Add(step) {
		xt := sc.x(t)
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`, xt, rowsTop-4, xt, axisY, colGrid)
		p(`<text x="%.1f" y="%d" text-anchor="middle" fill="%s">%s</text>`+"\n", xt, axisY+16, colMuted, t.UTC().Format(tickFormat(step)))
	}
	p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`+"\n", svgX0, axisY, svgX1, axisY, colMuted)
	p(`<text x="%d" y="%d" text-anchor="end" fill="%s">UTC</text>`+"\n", svgX1, axisY+32, colMuted)
	p("</g>\n")

	r.writeWaits(p, sc, axisY)
	for i := range r.Batches {
		r.writeBatch(p, sc, &r.Batches[i], rowsTop+i*rowH)
	}
	r.writeMoved(p, sc, areaTop, axisY)
	r.writeRollbacks(p, sc, rowsEnd, axisY)
	p("</svg>\n")
}

// writeLegend writes the key to the colours.
func writeLegend(p func(string, ...any)) {
	lx := 10.0
	for _, l := range []struct{ name, color, opacity string }{
		{"announce", colAnnounce, "1"}, {"converge", colConverge, "1"}, {"gate", colGate, "1"},
		{"at the target", colTarget, "1"}, {"rollback", colRollback, "1"}, {"not ready / held", colHeld, "1"},
		{"waiting for a person", colWait, "0.3"},
	} {
		p(`<rect x="%.1f" y="28" width="10" height="10" fill="%s" fill-opacity="%s"/><text x="%.1f" y="37" fill="%s">%s</text>`+"\n",
			lx, l.color, l.opacity, lx+14, colText, l.name)
		lx += 14 + float64(len(l.name))*6.2 + 16
	}
}

// writeWaits draws each wait for a person as a band across the rows and
// the area, labelled above the rows.
func (r *Report) writeWaits(p func(string, ...any), sc svgScale, axisY int) {
	ln := newLanes(rowsTop-8, rowsTop-20)
	for _, wt := range r.Waits {
		kind := "pause"
		if wt.Point != "" {
			kind = "confirm"
		}
		to := wt.To
		if to.IsZero() {
			to = r.Until
		}
		x0, x1 := sc.x(wt.From), sc.x(to)
		title := fmt.Sprintf("%s, %s–%s (%s)", wt.label(), clock(wt.From), clock(wt.To), engine.Human(wt.took(r.Until)))
		if wt.To.IsZero() {
			title = fmt.Sprintf("%s, since %s (%s, still waiting)", wt.label(), clock(wt.From), engine.Human(wt.took(r.Until)))
		}
		p(`<g class="wait wait-%s"><title>%s</title>`, kind, esc(title))
		p(`<rect class="band" x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" fill-opacity="0.18"/>`,
			x0, rowsTop-4, max(x1-x0, 3), axisY-rowsTop+4, colWait)
		lx, anchor, ly, text := ln.place(x0, wt.Why)
		p(`<text class="wait-label" x="%.1f" y="%d" text-anchor="%s" fill="%s">%s</text>`, lx, ly, anchor, colText, esc(text))
		p("</g>\n")
	}
}

// writeBatch draws batch b's row at y.
func (r *Report) writeBatch(p func(string, ...any), sc svgScale, b *Batch, y int) {
	p(`<g class="batch" data-batch="%d">`+"\n", b.Index)
	p(`<text x="%d" y="%d" text-anchor="end" fill="%s">%d %s</text>`+"\n", svgX0-8, y+barH-2, colText, b.Index, esc(shorten(b.Name, maxLabel)))
	segs := b.segments(r.Started, r.Until)
	marks := b.markers()
	if len(segs) > 0 {
		start, end := sc.x(segs[0].from), sc.x(segs[0].to)
		for _, s := range segs {
			start, end = min(start, sc.x(s.from)), max(end, sc.x(s.to))
		}
		p(`<rect class="bar" x="%.1f" y="%d" width="%.1f" height="%d" fill="#f6f7f9" stroke="#c9ced4" stroke-width="0.5"><title>%s</title></rect>`+"\n",
			start, y, max(end-start, 1.5), barH, esc(fmt.Sprintf("%s: %s, %d VMs", b.ref(), phaseWords(b.Phase), b.VMs)))
	}
	for _, s := range segs {
		sy, sh := float64(y), float64(barH)
		if s.thin {
			sy, sh = float64(y)+float64(barH)/2-2, 4
		}
		took := s.took
		if took == 0 {
			took = s.to.Sub(s.from)
		}
		what := strings.TrimSpace(s.kind + " " + s.note)
		p(`<rect class="seg seg-%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
			s.kind, sc.x(s.from), sy, max(sc.x(s.to)-sc.x(s.from), 1.5), sh, s.color,
			esc(fmt.Sprintf("%s: %s %s, %s–%s", b.ref(), what, engine.Human(took), clock(s.from), clock(s.to))))
	}
	for _, m := range marks {
		xm, cy := sc.x(m.at), float64(y)+float64(barH)/2
		switch m.kind {
		case "held":
			p(`<g class="held"><title>%s</title><path d="M%.1f %.1f l6 6 l-6 6 l-6 -6 Z" fill="%s" stroke="#fff" stroke-width="0.8"/>`,
				esc(m.title), xm, cy-6, colHeld)
			lx, anchor := xm+8, "start"
			if lx+4*charW > svgX1 {
				lx, anchor = xm-8, "end"
			}
			p(`<text x="%.1f" y="%d" text-anchor="%s" fill="%s">held</text></g>`+"\n", lx, y+barH-2, anchor, colHeld)
		case "retry":
			p(`<g class="retry"><title>%s</title><circle cx="%.1f" cy="%.1f" r="5" fill="#fff" stroke="%s" stroke-width="1.5"/>`,
				esc(m.title), xm, cy, colRetry)
			p(`<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9" fill="%s">R</text></g>`+"\n", xm, cy+3, colRetry)
		}
	}
	if len(segs) == 0 && len(marks) == 0 {
		p(`<text x="%d" y="%d" fill="%s">%s</text>`+"\n", svgX0+4, y+barH-2, colMuted, esc(phaseWords(b.Phase)))
	}
	p("</g>\n")
}

// writeMoved draws the VMs at the target over time, with a scale.
func (r *Report) writeMoved(p func(string, ...any), sc svgScale, areaTop, axisY int) {
	top := r.Totals.VMs
	for _, pt := range r.Moved {
		top = max(top, pt.VMs)
	}
	top = max(top, 1)
	step := vmStep(top)
	y := func(v int) float64 { return float64(axisY) - float64(v)/float64(top)*areaH }
	p(`<g class="moved">` + "\n")
	p(`<text x="%d" y="%d" text-anchor="middle" fill="%s" transform="rotate(-90 %d %d)">VMs at the target</text>`+"\n",
		svgX0-40, areaTop+areaH/2, colText, svgX0-40, areaTop+areaH/2)
	p(`<g class="yaxis">` + "\n")
	for v := 0; v <= top; v += step {
		p(`<line class="ytick" x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`, svgX0-3, y(v), svgX1, y(v), colGrid)
		p(`<text class="ytick" x="%d" y="%.1f" text-anchor="end" fill="%s">%d</text>`+"\n", svgX0-6, y(v)+4, colMuted, v)
	}
	p("</g>\n")
	if r.Totals.VMs > 0 {
		yt := y(r.Totals.VMs)
		p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-dasharray="2 3"/>`, svgX0, yt, svgX1, yt, colMuted)
		p(`<text x="%d" y="%.1f" text-anchor="end" fill="%s">all %d VMs</text>`+"\n", svgX1-2, yt-3, colMuted, r.Totals.VMs)
	}
	var path strings.Builder
	fmt.Fprintf(&path, "M%.1f %.1f", sc.x(sc.t0), y(0))
	for _, pt := range r.Moved {
		fmt.Fprintf(&path, " H%.1f V%.1f", sc.x(pt.Time), y(pt.VMs))
	}
	fmt.Fprintf(&path, " H%.1f V%.1f Z", sc.x(sc.t1), y(0))
	last := 0
	if len(r.Moved) > 0 {
		last = r.Moved[len(r.Moved)-1].VMs
	}
	p(`<path class="moved-area" d="%s" fill="%s" fill-opacity="0.25" stroke="%s" stroke-width="1.5"><title>%s</title></path>`+"\n",
		path.String(), colTarget, colTarget, esc(fmt.Sprintf("VMs at the target: %d of %d at the end", last, r.Totals.VMs)))
	p("</g>\n")
}

// writeRollbacks draws each rollback across everything, labelled under
// the rows with who rolled back and how long the change took.
func (r *Report) writeRollbacks(p func(string, ...any), sc svgScale, rowsEnd, axisY int) {
	ln := newLanes(rowsEnd+14, rowsEnd+28)
	for _, rb := range r.Rollbacks {
		xr := sc.x(rb.Time)
		text := "rollback by " + rb.By
		if rb.Took > 0 {
			text += " · " + engine.Human(rb.Took)
		}
		title := fmt.Sprintf("rollback of %s at %s by %s, %s: %s", batchList(rb), clock(rb.Time), rb.by(), rb.took(), rb.reason())
		p(`<g class="rollback"><title>%s</title>`, esc(strings.TrimSuffix(title, ": ")))
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="1.2" stroke-dasharray="4 3"/>`, xr, rowsTop-4, xr, axisY, colRollback)
		p(`<path d="M%.1f %d l-5 -8 h10 Z" fill="%s"/>`, xr, rowsTop-4, colRollback)
		lx, anchor, ly, text := ln.place(xr, text)
		p(`<text class="rollback-label" x="%.1f" y="%d" text-anchor="%s" fill="%s">%s</text>`, lx, ly, anchor, colRollback, esc(text))
		p("</g>\n")
	}
}

// vmStep is a round step for the scale of VMs: 1, 2 or 5 times a power
// of ten, giving about five steps up to top.
func vmStep(top int) int {
	raw := max(1, (top+4)/5)
	for mag := 1; ; mag *= 10 {
		for _, m := range []int{1, 2, 5} {
			if m*mag >= raw {
				return m * mag
			}
		}
	}
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
