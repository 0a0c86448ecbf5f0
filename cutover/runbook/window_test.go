package runbook

import (
	"testing"
	"time"
)

func TestRatio(t *testing.T) {
	tests := []struct {
		in   string
		want Ratio
		err  string
	}{
		{"99%", 0.99, ""},
		{"99.5 %", 0.995, ""},
		{"100%", 1, ""},
		{"0.99", 0.99, ""},
		{"1", 1, ""},
		{"0", 0, ""},
		{"99", 0, "want a fraction from 0 to 1: write 99% for a percentage"},
		{"101%", 0, "want a percentage from 0% to 100%"},
		{"-0.1", 0, "want a fraction from 0 to 1 or a percentage"},
		{"most", 0, "want a percentage such as 99% or a fraction such as 0.99"},
	}
	for _, tt := range tests {
		var r Ratio
		err := r.UnmarshalText([]byte(tt.in))
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%q: error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || float64(r) < float64(tt.want)-1e-9 || float64(r) > float64(tt.want)+1e-9 {
			t.Errorf("%q = %v, %v; want %v", tt.in, r, err, tt.want)
		}
	}
}

func TestChangeWindow(t *testing.T) {
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, oslo)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	mk := func(start, end string, days ...string) *ChangeWindow {
		w := &ChangeWindow{Start: start, End: end, Timezone: "Europe/Oslo", Days: days}
		var p problems
		w.check(func(path, value, format string, args ...any) { p.Add("x", 0, path, value, format, args...) })
		if err := p.Err(); err != nil {
			t.Fatal(err)
		}
		return w
	}
	night := mk("23:00", "01:00")
	fri := mk("22:00", "06:00", "fri")
	tests := []struct {
		w    *ChangeWindow
		now  string
		want string // "" = open
	}{
		{night, "2026-08-07 23:00", ""},
		{night, "2026-08-07 23:59", ""},
		{night, "2026-08-08 00:30", ""},
		{night, "2026-08-08 01:00", "outside the change window 23:00-01:00 Europe/Oslo: opens Sat 2026-08-08 23:00 CEST (in 22h0m0s)"},
		{night, "2026-08-07 22:59", "outside the change window 23:00-01:00 Europe/Oslo: opens Fri 2026-08-07 23:00 CEST (in 1m0s)"},
		// Friday night only; Saturday 05:59 still belongs to Friday's window.
		{fri, "2026-08-07 22:00", ""},
		{fri, "2026-08-08 05:59", ""},
		{fri, "2026-08-08 22:00", "outside the change window 22:00-06:00 Europe/Oslo on fri: opens Fri 2026-08-14 22:00 CEST (in 144h0m0s)"},
		// The night the clocks go back (2026-10-25 03:00 CEST -> 02:00 CET)
		// lasts an hour longer in real time; the window ends at 01:00 local.
		{night, "2026-10-25 00:59", ""},
		{nil, "2026-08-07 12:00", ""},
	}
	for _, tt := range tests {
		err := tt.w.Open(at(tt.now))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%v at %s: %q, want %q", tt.w, tt.now, got, tt.want)
		}
	}
}
