package schedule

import (
	"fmt"
	"time"

	"github.com/cutover/cutover/cutover/runbook"
)

// Where a schedule's start came from (Schedule.StartFrom).
const (
	StartGiven  = "given"
	StartWindow = "the change window's next opening"
)

// setStart fixes the run's start and the zone clock times are shown in,
// and checks the batches against the change window the start falls in.
func (s *Schedule) setStart(rb *runbook.Runbook, start, now time.Time) error {
	cw := rb.Window
	switch {
	case !start.IsZero():
		s.Start, s.StartFrom, s.Loc = start, StartGiven, fixedZone(start)
	case cw != nil:
		s.Start, s.StartFrom = cw.Next(now), StartWindow
	default:
		return nil
	}
	if cw == nil {
		return nil
	}
	s.Loc = cw.Location()
	open, close := cw.Around(s.Start)
	if open.IsZero() {
		s.Notes = append(s.Notes, fmt.Sprintf("the start %s is outside the change window %s: the run waits for it to open at %s, and every time here moves with it",
			s.Start.In(s.Loc).Format(clockLayout), rb.Window, cw.Next(s.Start).In(s.Loc).Format(clockLayout)))
		return nil
	}
	s.WindowOpen, s.WindowClose = open, close
	var late []string
	for _, b := range s.Batches {
		if !s.Start.Add(b.StartMax).Before(close) {
			b.PastClose = true
			late = append(late, b.Name)
		}
	}
	if len(late) > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("%s may start after the change window closes at %s: a batch that has not started by then waits for the next opening",
			nameRange(late), close.In(s.Loc).Format(clockLayout)))
	}
	return nil
}

// fixedZone is t's zone as a fixed offset named UTC+hh:mm, so that a
// start given with an offset shows its clock times in that offset
// whatever the machine's zone.
func fixedZone(t time.Time) *time.Location {
	_, off := t.Zone()
	if off == 0 {
		return time.UTC
	}
	sign, abs := '+', off
	if off < 0 {
		sign, abs = '-', -off
	}
	return time.FixedZone(fmt.Sprintf("UTC%c%02d:%02d", sign, abs/3600, abs%3600/60), off)
}

// nameRange names batches in order: "batch-14", "batch-14 and batch-15",
// "batch-12 to batch-15".
func nameRange(names []string) string {
	switch len(names) {
	case 1:
		return names[0]
	case 2:
		return names[0] + " and " + names[1]
	}
	return names[0] + " to " + names[len(names)-1]
}
