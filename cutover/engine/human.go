package engine

import (
	"fmt"
	"strings"
	"time"
)

// Human formats a duration for people: milliseconds below a second,
// tenths below a minute, seconds above.
func Human(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// FailedGates sums up the gates that did not pass, each with its first
// reason: "probe: vm-0042 10.64.0.52: tcp 80: connection refused (+3 more)".
// It is "" when every gate passed.
func FailedGates(vs []VerdictRecord) string {
	var parts []string
	for _, v := range vs {
		if v.Pass {
			continue
		}
		r := v.Gate
		if len(v.Reasons) > 0 {
			r += ": " + v.Reasons[0]
			if len(v.Reasons) > 1 {
				r += fmt.Sprintf(" (+%d more)", len(v.Reasons)-1)
			}
		}
		parts = append(parts, r)
	}
	return strings.Join(parts, "; ")
}
