package runbook

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// MarshalJSON writes the window as written in the
func (w *ChangeWindow) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Start    string   `json:"start"`
		End      string   `json:"end"`
		Timezone string   `json:"timezone"`
		Days     []string `json:"days,omitempty"`
	}{w.Start, w.End, w.Timezone, w.Days})
}

// Settings returns the fields that apply to the gate's kind as text.
func (g GateConfig) Settings() map[string]string {
	m := map[string]string{}
	v := reflect.ValueOf(g)
	for _, key := range gateFields[g.Kind][1:] {
		switch f := v.FieldByIndex(gateFieldIndex[key]).Interface().(type) {
		case time.Duration:
			m[key] = f.String()
		case float64:
			m[key] = strconv.FormatFloat(f, 'g', -1, 64)
		default:
			m[key] = fmt.Sprint(f)
		}
	}
	return m
}

// String describes the gate and its settings in one line.
func (g GateConfig) String() string {
	switch g.Kind {
	case GateBGP:
		return fmt.Sprintf("bgp: observed peers hold the batch's routes within %s", g.Timeout)
	case GateProbe:
		fails := strconv.Itoa(g.MaxFailures)
		if g.MaxFailures < 0 {
			fails = "any"
		}
		return fmt.Sprintf("probe: ≥%s of baseline-healthy VMs healthy and ≤%s failures, rise %d fall %d, every %s (timeout %s, %d at once), within %s",
			g.MinHealthy, fails, g.Rise, g.Fall, g.Interval, g.Timeout, g.Concurrency, g.Within)
	case GatePrometheus:
		return fmt.Sprintf("prometheus: %s %s %s at %s, every %s, within %s",
			g.Query, g.Op, strconv.FormatFloat(g.Value, 'g', -1, 64), g.URL, g.Interval, g.Within)
	}
	return g.Kind
}
