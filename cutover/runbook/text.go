package runbook

import (
	"encoding/json"
)

// MarshalJSON writes the window as written in the runbook.
func (w *ChangeWindow) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Start    string   `json:"start"`
		End      string   `json:"end"`
		Timezone string   `json:"timezone"`
		Days     []string `json:"days,omitempty"`
	}{w.Start, w.End, w.Timezone, w.Days})
}
