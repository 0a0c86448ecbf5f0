package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/cutover/engine"
)

// The webhook plugs into the engine as it is.
var _ = engine.Config{Notify: (&Webhook{}).Notify}

// recorder is a webhook server that answers from a script.
type recorder struct {
	mu       sync.Mutex
	bodies   []Payload
	headers  []http.Header
	attempts int
	answer   func(attempt int) int // status code for the n-th request (0-based)
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	n := rec.attempts
	rec.attempts++
	code := http.StatusNoContent
	if rec.answer != nil {
		code = rec.answer(n)
	}
	if code < 300 {
		var p Payload
		if err := json.Unmarshal(body, &p); err != nil {
			code = http.StatusBadRequest
		} else {
			rec.bodies = append(rec.bodies, p)
			rec.headers = append(rec.headers, r.Header.Clone())
		}
	}
	rec.mu.Unlock()
	w.WriteHeader(code)
}

var at = time.Date(2026, 3, 14, 23, 0, 5, 0, time.UTC)

func newWebhook(t *testing.T, url string) *Webhook {
	return &Webhook{URL: url, Run: "20260314T230000Z", Now: func() time.Time { return at },
		Log: zerolog.New(zerolog.NewTestWriter(t)), backoff: time.Millisecond}
}

func TestPayloads(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	w := newWebhook(t, srv.URL)
	w.Notify("confirm", "after-canary")
	w.Notify("gate-failed", "b02-hsyk: probe: vm-2a: connection refused")
	w.Notify("done", "3 batches committed, 1 rolled back")
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []Payload{
		{Kind: "confirm", Message: "after-canary", Time: at, Run: "20260314T230000Z", Text: "cutover confirm: after-canary"},
		{Kind: "gate-failed", Message: "b02-hsyk: probe: vm-2a: connection refused", Time: at, Run: "20260314T230000Z",
			Text: "cutover gate-failed: b02-hsyk: probe: vm-2a: connection refused"},
		{Kind: "done", Message: "3 batches committed, 1 rolled back", Time: at, Run: "20260314T230000Z",
			Text: "cutover done: 3 batches committed, 1 rolled back"},
	}
	if !reflect.DeepEqual(rec.bodies, want) {
		t.Errorf("payloads\n got %+v\nwant %+v", rec.bodies, want)
	}
	if ct := rec.headers[0].Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if sent, dropped, failed := w.Stats(); sent != 3 || dropped != 0 || failed != 0 {
		t.Errorf("stats sent %d dropped %d failed %d", sent, dropped, failed)
	}
	// After Close nothing is sent, and nothing blocks.
	w.Notify("done", "again")
	if _, dropped, _ := w.Stats(); dropped != 1 {
		t.Errorf("a notification after Close was not dropped")
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name         string
		answer       func(int) int
		wantAttempts int
		wantSent     uint64
		wantFailed   uint64
	}{
		{"ok", func(int) int { return 200 }, 1, 1, 0},
		{"500 then ok", func(n int) int {
			if n == 0 {
				return 500
			}
			return 200
		}, 2, 1, 0},
		{"503 twice then ok", func(n int) int {
			if n < 2 {
				return 503
			}
			return 200
		}, 3, 1, 0},
		{"500 always: 2 retries", func(int) int { return 500 }, 3, 0, 1},
		{"429 is retried", func(n int) int {
			if n == 0 {
				return 429
			}
			return 200
		}, 2, 1, 0},
		{"404 is not retried", func(int) int { return 404 }, 1, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{answer: tt.answer}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			w := newWebhook(t, srv.URL)
			w.Notify("gate-failed", "b02")
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			sent, dropped, failed := w.Stats()
			if rec.attempts != tt.wantAttempts || sent != tt.wantSent || failed != tt.wantFailed || dropped != 0 {
				t.Errorf("attempts %d sent %d failed %d dropped %d, want %d %d %d 0",
					rec.attempts, sent, failed, dropped, tt.wantAttempts, tt.wantSent, tt.wantFailed)
			}
		})
	}
}

// TestHangingServer: a server that never answers must not hold up the
// engine, and Close gives up when its context ends.
func TestHangingServer(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	w := newWebhook(t, srv.URL)
	w.QueueSize = 4
	w.Timeout = time.Hour // only Close ends the hanging request

	w.Notify("confirm", "before-start")
	<-arrived // the first one is in flight, stuck
	notified := make(chan struct{})
	go func() {
		defer close(notified)
		for range 10 {
			w.Notify("gate-failed", "b")
		}
	}()
	select {
	case <-notified:
	case <-time.After(30 * time.Second):
		t.Fatal("Notify blocked on a hanging server")
	}
	// 4 fit in the queue, 6 were dropped.
	if _, dropped, _ := w.Stats(); dropped != 6 {
		t.Errorf("dropped %d, want 6", dropped)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := w.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || err.Error() != "close webhook: context deadline exceeded" {
		t.Errorf("Close: %v", err)
	}
	// The one in flight failed; the queued ones were dropped too.
	if sent, dropped, failed := w.Stats(); sent != 0 || dropped != 10 || failed != 1 {
		t.Errorf("stats sent %d dropped %d failed %d, want 0 10 1", sent, dropped, failed)
	}
}

func TestBadURL(t *testing.T) {
	w := newWebhook(t, "::not a url")
	w.Notify("done", "x")
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sent, _, failed := w.Stats(); sent != 0 || failed != 1 {
		t.Errorf("sent %d failed %d", sent, failed)
	}
}
