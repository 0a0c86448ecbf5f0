package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/cutover/cutover/cutover/daemon/client"
)

// TestAnswerStatus: an answer that is not OK carries its HTTP status, with
// the daemon's words or, when it sent none, the status line.
func TestAnswerStatus(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/pause", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"error":"no run is active"}` + "\n"))
	})
	mux.HandleFunc("POST /v1/resume", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	cl := client.New(sock)
	for _, tc := range []struct {
		name string
		call func(context.Context) error
		code int
		msg  string
	}{
		{"refused", cl.Pause, http.StatusConflict, "no run is active"},
		{"failed without words", cl.Resume, http.StatusInternalServerError, "daemon answered 500 Internal Server Error"},
	} {
		err := tc.call(context.Background())
		var sc interface{ StatusCode() int }
		if !errors.As(err, &sc) || sc.StatusCode() != tc.code || err.Error() != tc.msg {
			t.Errorf("%s: %v, want status %d and %q", tc.name, err, tc.code, tc.msg)
		}
	}
}
