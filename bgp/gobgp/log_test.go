package gobgp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"

	"github.com/cutover/cutover/internal/logcheck"
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
	if got := strings.TrimSpace(buf.String()); got != want {
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

// TestLoggerKeysOnce checks that GoBGP's fields never repeat a key of the
// line, whatever their names: strict JSON parsers reject a
// line with a key twice.
func TestLoggerKeysOnce(t *testing.T) {
	tests := []struct {
		name   string
		fields gobgplog.Fields
		want   string
	}{
		{"renamed", gobgplog.Fields{"Topic": "Peer", "Key": "10.255.0.1", "State": "BGP_FSM_ESTABLISHED"},
			`{"level":"error","component":"bgp","peer":"10.255.0.1","state":"BGP_FSM_ESTABLISHED","topic":"Peer","message":"gobgp: m"}`},
		{"facility dropped", gobgplog.Fields{"Topic": "config", gobgplog.FieldFacility: gobgplog.FacilityConfig},
			`{"level":"error","component":"bgp","topic":"config","message":"gobgp: m"}`},
		{"component of GoBGP", gobgplog.Fields{"component": "fsm", "Component": "table"},
			`{"level":"error","component":"bgp","gobgp_component":"table","gobgp_gobgp_component":"fsm","message":"gobgp: m"}`},
		{"zerolog's own keys", gobgplog.Fields{"Message": "x", "Level": 3, "time": "now"},
			`{"level":"error","component":"bgp","gobgp_level":3,"gobgp_message":"x","gobgp_time":"now","message":"gobgp: m"}`},
		{"three errors", gobgplog.Fields{"Err": "a", "Error": "b", "error": "c"},
			`{"level":"error","component":"bgp","error":"a","gobgp_error":"b","gobgp_gobgp_error":"c","message":"gobgp: m"}`},
		{"same name in two cases", gobgplog.Fields{"Old": 1, "old": 2, "AdminState": "up", "adminState": "down"},
			`{"level":"error","component":"bgp","adminstate":"up","old":1,"gobgp_adminstate":"down","gobgp_old":2,"message":"gobgp: m"}`},
		{"a field named peer", gobgplog.Fields{"Key": "10.255.0.1", "peer": "x"},
			`{"level":"error","component":"bgp","peer":"10.255.0.1","gobgp_peer":"x","message":"gobgp: m"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger{zerolog.New(&buf).With().Str("component", "bgp").Logger()}.Error("m", tt.fields)
			got := strings.TrimSpace(buf.String())
			if got != tt.want {
				t.Errorf("wrote\n%s\nwant\n%s", got, tt.want)
			}
			if err := logcheck.Line([]byte(got)); err != nil {
				t.Error(err)
			}
		})
	}
}

// lockedBuffer is a log for several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLogLinesStrictJSON runs a speaker that logs everything, GoBGP's
// own lines included, through a session that comes up, is ended by the
// peer, comes up again and is closed: every line must be
// one JSON object with each key once, one component among them.
func TestLogLinesStrictJSON(t *testing.T) {
	var logs lockedBuffer
	defer func() {
		if t.Failed() {
			t.Logf("the speaker's log:\n%s", logs.String())
		}
	}()
	local := loopback()
	peer := newTestPeer(t, 65000)
	peer.addNeighbor(local, 65100, neighborOpts{gr: true})
	log := zerolog.New(&logs).Level(zerolog.TraceLevel).With().Timestamp().Logger()
	sp := newSpeakerLog(t, log, local, testLimits, peer.config(bgp.ProofMirror))
	ctx := context.Background()
	if err := sp.Set(ctx, vmRoutes(20, "10.255.2.2")); err != nil {
		t.Fatal(err)
	}
	peer.waitEstablished(local)
	if err := peer.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: local.String()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() string {
		if !strings.Contains(logs.String(), `"message":"gobgp: Peer Down"`) {
			return "GoBGP has not logged the session going down"
		}
		return ""
	})
	peer.addNeighbor(local, 65100, neighborOpts{gr: true})
	peer.waitEstablished(local)
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	out := logs.String()
	rep, err := logcheck.Log(strings.NewReader(out), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		t.Errorf("%v: %s", p, p.Text)
	}
	gobgpLines, notification := 0, false
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			continue // reported above
		}
		if m["component"] != "bgp" {
			t.Errorf("line %d: component %v, want bgp: %s", i+1, m["component"], line)
		}
		if msg, _ := m["message"].(string); strings.HasPrefix(msg, "gobgp: ") {
			gobgpLines++
			notification = notification || strings.Contains(msg, "notification")
		}
	}
	// A test that sees no GoBGP line would check nothing of the adapter.
	// Whether GoBGP logs the NOTIFICATION itself depends on whether it
	// reads it before the peer's close: the session going down is what
	// the test waits for, the NOTIFICATION line is only reported.
	if gobgpLines < 10 {
		t.Errorf("%d lines, %d from GoBGP, want at least 10", rep.Lines, gobgpLines)
	}
	t.Logf("%d lines, %d from GoBGP (one about the NOTIFICATION: %v), each strict JSON with unique keys", rep.Lines, gobgpLines, notification)
}
