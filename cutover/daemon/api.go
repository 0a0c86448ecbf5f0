package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/engine"

	"github.com/rs/zerolog"
)

// Control is what the daemon's local API serves.
type Control interface {
	Run(ctx context.Context, req client.RunRequest) error
	Status(sinceEvent int) engine.Status
	Pause(operator string) error
	Resume(operator string) error
	Step(operator string) error
	Confirm(point string, goAhead bool, operator string) error
	Rollback(ctx context.Context, t engine.RollbackTarget, operator string) error
	Journal(ctx context.Context) ([]engine.JournalEntry, error)
}

type operatorKey struct{}

// Operator names the person behind a request: the unix user of the peer
// process (SO_PEERCRED), with the name the client sent in brackets when it
// differs (sudo).
func Operator(ctx context.Context, claimed string) string {
	name, _ := ctx.Value(operatorKey{}).(string)
	switch {
	case name == "":
		if claimed == "" {
			return "unknown"
		}
		return claimed
	case claimed != "" && claimed != name:
		return name + " (" + claimed + ")"
	}
	return name
}

// ConnContext records the peer's unix user on the request context.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *syscall.Ucred
	_ = raw.Control(func(fd uintptr) {
		cred, _ = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if cred == nil {
		return ctx
	}
	name := strconv.Itoa(int(cred.Uid))
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	return context.WithValue(ctx, operatorKey{}, name)
}

// NewAPI returns the HTTP handler of the local API.
func NewAPI(c Control, log zerolog.Logger) http.Handler {
	mux := http.NewServeMux()
	type opReq struct {
		Operator string `json:"operator"`
	}
	decode := func(r *http.Request, v any) error {
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("bad request: %w", err)
		}
		return nil
	}
	reply := func(w http.ResponseWriter, v any, err error) {
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			code := http.StatusConflict
			if errors.Is(err, engine.ErrNoRun) {
				code = http.StatusNotFound
			}
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(client.ErrorBody{Error: err.Error()})
			return
		}
		if v == nil {
			v = struct{}{}
		}
		_ = json.NewEncoder(w).Encode(v)
	}
	simple := func(f func(string) error, name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var req opReq
			if err := decode(r, &req); err != nil {
				reply(w, nil, err)
				return
			}
			op := Operator(r.Context(), req.Operator)
			log.Info().Str("op", name).Str("operator", op).Msg("operator command")
			reply(w, nil, f(op))
		}
	}
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		since, _ := strconv.Atoi(r.URL.Query().Get("since"))
		reply(w, c.Status(since), nil)
	})
	mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) {
		var req client.RunRequest
		if err := decode(r, &req); err != nil {
			reply(w, nil, err)
			return
		}
		req.Operator = Operator(r.Context(), req.Operator)
		log.Info().Str("op", "run").Str("operator", req.Operator).Str("runbook", req.Runbook).Msg("operator command")
		reply(w, nil, c.Run(r.Context(), req))
	})
	mux.HandleFunc("POST /v1/pause", simple(c.Pause, "pause"))
	mux.HandleFunc("POST /v1/resume", simple(c.Resume, "resume"))
	mux.HandleFunc("POST /v1/step", simple(c.Step, "step"))
	mux.HandleFunc("POST /v1/confirm", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Point    string `json:"point"`
			Go       bool   `json:"go"`
			Operator string `json:"operator"`
		}
		if err := decode(r, &req); err != nil {
			reply(w, nil, err)
			return
		}
		op := Operator(r.Context(), req.Operator)
		log.Info().Str("op", "confirm").Str("operator", op).Str("reason", req.Point).Bool("go", req.Go).Msg("operator command")
		reply(w, nil, c.Confirm(req.Point, req.Go, op))
	})
	mux.HandleFunc("POST /v1/rollback", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			engine.RollbackTarget
			Operator string `json:"operator"`
		}
		if err := decode(r, &req); err != nil {
			reply(w, nil, err)
			return
		}
		op := Operator(r.Context(), req.Operator)
		log.Info().Str("op", "rollback").Str("operator", op).Str("reason", req.RollbackTarget.String()).Msg("operator command")
		start := time.Now()
		err := c.Rollback(r.Context(), req.RollbackTarget, op)
		reply(w, map[string]any{"took": time.Since(start).String()}, err)
	})
	mux.HandleFunc("GET /v1/journal", func(w http.ResponseWriter, r *http.Request) {
		es, err := c.Journal(r.Context())
		reply(w, es, err)
	})
	return mux
}

// Listen opens the daemon's unix socket with mode 0660 and, when group is
// not empty, that group; a stale socket file is replaced, a live one is an
// error (another daemon runs).
func Listen(path, group string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("listen %s: another cutover daemon is serving there", path)
	}
	_ = os.Remove(path)
	if err := os.MkdirAll(dirOf(path), 0o755); err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("socket group %q: %w", group, err)
		}
		gid, _ := strconv.Atoi(g.Gid)
		if err := os.Chown(path, -1, gid); err != nil {
			l.Close()
			return nil, fmt.Errorf("chown %s: %w", path, err)
		}
	}
	return l, nil
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			if i == 0 {
				return "/"
			}
			return path[:i]
		}
	}
	return "."
}
