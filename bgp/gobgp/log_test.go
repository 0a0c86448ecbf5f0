package gobgp

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/rs/zerolog"
)

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	l := logger{zerolog.New(&buf).Level(zerolog.InfoLevel)}
	if got := l.GetLevel(); got != gobgplog.WarnLevel {
		t.Errorf("GetLevel at info = %v, want warn: GoBGP info is our debug", got)
	}
	l.Info("Add a peer configuration", gobgplog.Fields{"Key": "10.255.0.1"})
	l.Warn(expectedWithdrawWarning, gobgplog.Fields{"Topic": "Table"})
	if buf.Len() != 0 {
		t.Errorf("logged below the level or an expected warning: %s", buf.String())
	}
	l.Warn("sent notification", gobgplog.Fields{"Topic": "Peer", "Key": "10.255.0.1", "Err": errors.New("boom"), "Code": uint8(6)})
	want := `{"level":"warn","code":6,"error":"boom","peer":"10.255.0.1","topic":"Peer","message":"gobgp: sent notification"}`
	if got := strings.TrimSpace(buf.String()); !sameFields(got, want) {
		t.Errorf("Warn wrote\n%s\nwant\n%s", got, want)
	}
	for lvl, want := range map[zerolog.Level]gobgplog.LogLevel{
		zerolog.TraceLevel: gobgplog.DebugLevel, zerolog.DebugLevel: gobgplog.InfoLevel,
		zerolog.WarnLevel: gobgplog.WarnLevel, zerolog.ErrorLevel: gobgplog.ErrorLevel,
	} {
		if got := (logger{zerolog.New(nil).Level(lvl)}).GetLevel(); got != want {
			t.Errorf("GetLevel at %s = %v, want %v", lvl, got, want)
		}
	}
}

// sameFields compares two JSON log lines whose fields may come in any
// order (GoBGP passes a map).
func sameFields(a, b string) bool {
	split := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, f := range strings.Split(strings.Trim(s, "{}"), ",") {
			m[f] = true
		}
		return m
	}
	ma, mb := split(a), split(b)
	if len(ma) != len(mb) {
		return false
	}
	for k := range ma {
		if !mb[k] {
			return false
		}
	}
	return true
}
