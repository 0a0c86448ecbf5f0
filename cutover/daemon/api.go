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
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/runbook"

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
	// Rollback returns how long the change took (BGP and nft, as the
	// engine measured and journaled it).
	Rollback(ctx context.Context, t engine.RollbackTarget, operator string) (time.Duration, error)
	// Retry takes rolled-back or held batches back to pending (none: every
	// one of them).
	Retry(batches []int, operator string) error
	Journal(ctx context.Context) ([]engine.JournalEntry, error)
	// Reconcile decides on an earlier run's traces that the journal does
	// not hold: DecideAdopt or DecideClear.
	Reconcile(ctx context.Context, decision, operator string) error
}

// Limits of the API. Anyone in the socket's group can talk to the daemon,
// which runs as root: it opens no file named in a request, takes no
// request it cannot parse strictly for a default action, and no slow or
// endless request holds it, so that the emergency brake (rollback) always
// gets through.
const (
	// maxCommandBody is the largest body of pause, resume, step, confirm
	// and rollback.
	maxCommandBody = 1 << 10
	// maxRunBody is the largest body of run: both files at their largest,
	// base64-encoded, and room for the names and the JSON around them.
	maxRunBody = (runbook.MaxRunbookSize+2)/3*4 + (runbook.MaxInventorySize+2)/3*4 + 64<<10
	// maxNameLen is the longest file name a run request may give.
	maxNameLen = 4096
	// maxOperatorLen is the longest operator name a request may claim.
	maxOperatorLen = 256
	// maxReasonLen is the longest reason a rollback may carry.
	maxReasonLen = 512
	// maxRetryBatches is the most batches one retry may name (none names
	// every rolled-back and held batch).
	maxRetryBatches = 100
)

// apiLimits are the server's timeouts and its connection cap.
type apiLimits struct {
	MaxConns          int           // connections served at once; more wait to be accepted
	ReadHeaderTimeout time.Duration // a request's headers
	ReadTimeout       time.Duration // a whole request: headers and body (a run body is up to ~86 MiB)
	CommandTimeout    time.Duration // a command's body (at most 1 KiB), from when its headers are read
	IdleTimeout       time.Duration // a kept-alive connection without a request
	WriteTimeout      time.Duration // writing an answer, from when it is ready
}

// defaultLimits are the limits of the daemon's API. Status polls (status
// --watch, the live view) are short requests on a kept-alive connection.
var defaultLimits = apiLimits{
	MaxConns:          32,
	ReadHeaderTimeout: 5 * time.Second,
	ReadTimeout:       60 * time.Second,
	CommandTimeout:    10 * time.Second,
	IdleTimeout:       60 * time.Second,
	WriteTimeout:      30 * time.Second,
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

// ConnContext records the peer's unix user on the request context. It
// looks through connections that wrap another (NetConn), such as those
// of the daemon's connection cap.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	for {
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = w.NetConn()
	}
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
	ctx = context.WithValue(ctx, peerKey{}, peerCred{UID: cred.Uid, GID: cred.Gid, User: name})
	return context.WithValue(ctx, operatorKey{}, name)
}

// httpError is a request refused before it reached the daemon, with its
// status code.
type httpError struct {
	code  int
	msg   string
	cause error // what the JSON decoder said, if it said it
}

func (e *httpError) Error() string { return e.msg }

func (e *httpError) Unwrap() error { return e.cause }

func badRequest(format string, args ...any) error {
	return &httpError{code: http.StatusBadRequest, msg: "bad request: " + fmt.Sprintf(format, args...)}
}

// The request bodies as the daemon decodes them: a pointer is nil when its
// field was not sent. Fields without omitempty are required (see
// missingFields). client holds the bodies as the client writes them.
type (
	runBody struct {
		Runbook   *fileBody `json:"runbook"`
		Inventory *fileBody `json:"inventory"`
		Yes       *bool     `json:"yes"`
		Operator  *string   `json:"operator"`
	}
	fileBody struct {
		Name    *string `json:"name"`
		Content *[]byte `json:"content"`
	}
	operatorBody struct {
		Operator *string `json:"operator"`
	}
	confirmBody struct {
		Point    *string `json:"point"`
		Go       *bool   `json:"go"`
		Operator *string `json:"operator"`
	}
	reconcileBody struct {
		Decision *string `json:"decision"`
		Operator *string `json:"operator"`
	}
	rollbackBody struct {
		All      *bool   `json:"all,omitempty"`
		Batch    *int    `json:"batch,omitempty"`
		To       *int    `json:"to,omitempty"`
		Reason   *string `json:"reason,omitempty"`
		Operator *string `json:"operator"`
	}
	retryBody struct {
		Batches  *[]int  `json:"batches"`
		Operator *string `json:"operator"`
	}
)

// request checks a run body and turns it into the daemon's request.
func (b *runBody) request() (client.RunRequest, error) {
	if err := required(b); err != nil {
		return client.RunRequest{}, err
	}
	for _, f := range []struct{ field, name string }{{"runbook.name", *b.Runbook.Name}, {"inventory.name", *b.Inventory.Name}} {
		if f.name == "" {
			return client.RunRequest{}, badRequest("%s is empty: give the path the client read the file from", f.field)
		}
		if err := checkText(f.field, f.name, maxNameLen); err != nil {
			return client.RunRequest{}, err
		}
	}
	if err := checkText("operator", *b.Operator, maxOperatorLen); err != nil {
		return client.RunRequest{}, err
	}
	return client.RunRequest{
		Runbook:   client.File{Name: *b.Runbook.Name, Content: *b.Runbook.Content},
		Inventory: client.File{Name: *b.Inventory.Name, Content: *b.Inventory.Content},
		Yes:       *b.Yes,
		Operator:  *b.Operator,
	}, nil
}

// target checks a rollback body: exactly one of all (true), batch and to.
// Nothing, not even a zero, stands for "every batch" unless it says so.
func (b *rollbackBody) target() (engine.RollbackTarget, error) {
	var given []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"all", b.All != nil}, {"batch", b.Batch != nil}, {"to", b.To != nil}} {
		if f.set {
			given = append(given, f.name)
		}
	}
	if len(given) != 1 {
		got := "none"
		if len(given) > 1 {
			got = strings.Join(given, " and ")
		}
		return engine.RollbackTarget{}, badRequest(`give exactly one of "all": true, "batch": N and "to": N (cutover rollback --all | --batch N | --to N), got %s: nothing was rolled back`, got)
	}
	switch {
	case b.All != nil:
		if !*b.All {
			return engine.RollbackTarget{}, badRequest(`"all" can only be true: nothing was rolled back`)
		}
		return engine.AllBatches(), nil
	case b.Batch != nil:
		if *b.Batch < 0 {
			return engine.RollbackTarget{}, badRequest(`"batch" %d: batches are numbered from 0: nothing was rolled back`, *b.Batch)
		}
		return engine.OnlyBatch(*b.Batch), nil
	default:
		if *b.To < 0 {
			return engine.RollbackTarget{}, badRequest(`"to" %d: batches are numbered from 0: nothing was rolled back`, *b.To)
		}
		return engine.BatchesFrom(*b.To), nil
	}
}

// required refuses a body that lacks a required field: a nil pointer
// whose tag has no omitempty, also inside nested objects.
func required(v any) error {
	if m := missingFields(reflect.ValueOf(v).Elem(), ""); len(m) > 0 {
		return badRequest("missing %s", strings.Join(m, ", "))
	}
	return nil
}

func missingFields(v reflect.Value, prefix string) []string {
	var out []string
	t := v.Type()
	for i := range t.NumField() {
		name, opts, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		f := v.Field(i)
		if name == "" || name == "-" || f.Kind() != reflect.Pointer {
			continue
		}
		switch {
		case f.IsNil() && !strings.Contains(opts, "omitempty"):
			out = append(out, prefix+name)
		case !f.IsNil() && f.Elem().Kind() == reflect.Struct:
			out = append(out, missingFields(f.Elem(), prefix+name+".")...)
		}
	}
	return out
}

// checkText refuses a name that would garble a message, a log line or
// the daemon's records: invalid UTF-8, control characters (line breaks),
// or more than max bytes.
func checkText(field, s string, max int) error {
	switch {
	case len(s) > max:
		return badRequest("%s is longer than %d bytes", field, max)
	case !utf8.ValidString(s):
		return badRequest("%s is not valid UTF-8", field)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return badRequest("%s %q has a control character", field, s)
	}
	return nil
}

// decodeBody reads the request's body, at most limit bytes, as exactly one
// JSON value into v, refusing unknown fields. With readFor > 0, the body
// must have arrived readFor after the handler starts.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, readFor time.Duration, v any) error {
	rc := http.NewResponseController(w)
	if readFor > 0 {
		_ = rc.SetReadDeadline(time.Now().Add(readFor))
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err, limit)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if he := readError(err, limit); he != nil {
			return he
		}
		return badRequest("data after the JSON object: send exactly one object")
	}
	// The body is read to its end. Lift the read deadline, so that a
	// command that takes long (a rollback, starting the BGP speaker) is
	// not cut off: net/http cancels a request's context when the read
	// deadline passes while the handler runs.
	_ = rc.SetReadDeadline(time.Time{})
	return nil
}

// readError reports a failure to read the body itself, or nil.
func readError(err error, limit int64) error {
	var (
		mbe *http.MaxBytesError
		ne  net.Error
	)
	switch {
	case errors.As(err, &mbe):
		return &httpError{code: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("request body too large: at most %d bytes", limit)}
	case errors.As(err, &ne) && ne.Timeout():
		return &httpError{code: http.StatusRequestTimeout, msg: "the request body did not arrive in time"}
	}
	return nil
}

// bodyError explains why a body could not be decoded.
func bodyError(err error, limit int64) error {
	var (
		se  *json.SyntaxError
		ute *json.UnmarshalTypeError
	)
	if he := readError(err, limit); he != nil {
		return he
	}
	switch {
	case errors.Is(err, io.EOF):
		return badRequest("empty body: want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("the JSON ends too early")
	case errors.As(err, &se):
		return badRequest("malformed JSON at byte %d: %s", se.Offset, se)
	case errors.As(err, &ute):
		field := ute.Field
		if field == "" {
			field = "the body"
		}
		return &httpError{code: http.StatusBadRequest, cause: err,
			msg: fmt.Sprintf("bad request: %s: want %s, not a JSON %s", field, wantOf(ute.Type), ute.Value)}
	}
	return badRequest("%s", strings.TrimPrefix(err.Error(), "json: "))
}

// wantOf describes what JSON a Go type takes.
func wantOf(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		return "an object"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "base64 text"
		}
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(wantOf(t.Elem()), "an "), "a ") + "s"
	}
	return t.String()
}

// api serves the local API.
type api struct {
	c   Control
	log zerolog.Logger
	lim apiLimits
	// runSlot lets one run request at a time be read and started: a run
	// body may be some 86 MiB.
	runSlot chan struct{}
	// roles says who may change a run; nil: every user of the socket.
	roles *roles
}

// NewAPI returns the HTTP handler of the local API.
func NewAPI(c Control, log zerolog.Logger) http.Handler { return newAPI(c, log, defaultLimits, nil) }

func newAPI(c Control, log zerolog.Logger, lim apiLimits, rl *roles) http.Handler {
	a := &api{c: c, log: log, lim: lim, runSlot: make(chan struct{}, 1), roles: rl}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		since, _ := strconv.Atoi(r.URL.Query().Get("since"))
		a.reply(w, c.Status(since), nil)
	})
	// Every command that changes a run is an operator's; status and the
	// journal are for observers too.
	mux.HandleFunc("POST /v1/run", a.operate("run", a.run))
	mux.HandleFunc("POST /v1/pause", a.operate("pause", a.simple(c.Pause, "pause")))
	mux.HandleFunc("POST /v1/resume", a.operate("resume", a.simple(c.Resume, "resume")))
	mux.HandleFunc("POST /v1/step", a.operate("step", a.simple(c.Step, "step")))
	mux.HandleFunc("POST /v1/confirm", a.operate("confirm", a.confirm))
	mux.HandleFunc("POST /v1/rollback", a.operate("rollback", a.rollback))
	mux.HandleFunc("POST /v1/reconcile", a.operate("reconcile", a.reconcile))
	mux.HandleFunc("POST /v1/retry", a.operate("retry", a.retry))
	mux.HandleFunc("GET /v1/journal", func(w http.ResponseWriter, r *http.Request) {
		es, err := c.Journal(r.Context())
		a.reply(w, es, err)
	})
	return mux
}

// reply writes v, or err with its status code: 400, 408 and 413 for a
// request that could not be read, 422 for mistakes in a runbook, 404
// when there is no run, 409 for a command the daemon refused.
func (a *api) reply(w http.ResponseWriter, v any, err error) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(a.lim.WriteTimeout))
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		body := client.ErrorBody{Error: err.Error()}
		var (
			he *httpError
			ve runbook.ValidationErrors
			fe runbook.FieldError
		)
		code := http.StatusConflict
		switch {
		case errors.As(err, &he):
			code = he.code
		case errors.As(err, &ve):
			code, body.Problems = http.StatusUnprocessableEntity, ve
		case errors.As(err, &fe):
			code, body.Problems = http.StatusUnprocessableEntity, []runbook.FieldError{fe}
		case errors.Is(err, engine.ErrNoRun):
			code = http.StatusNotFound
		}
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body)
		return
	}
	if v == nil {
		v = struct{}{}
	}
	_ = json.NewEncoder(w).Encode(v)
}

// operate serves h only to a user who may change the run (roles).
func (a *api) operate(cmd string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := a.roles.operate(r.Context(), cmd); err != nil {
			a.refuse(w, r, cmd, err)
			return
		}
		h(w, r)
	}
}

// refuse answers a request that was not understood, and logs who sent it.
func (a *api) refuse(w http.ResponseWriter, r *http.Request, op string, err error) {
	a.log.Warn().Str("op", op).Str("operator", Operator(r.Context(), "")).Str("reason", err.Error()).Msg("refused a request")
	a.reply(w, nil, err)
}

// command reads an operator command's body: decodes it strictly into body,
// runs check (nil: none), requires every field, checks the operator's name
// (*operator, a field of body) and returns the person behind the request
// (see Operator). On a mistake it has answered and logged the refusal, and
// ok is false.
func (a *api) command(w http.ResponseWriter, r *http.Request, name string, body any, operator **string, check func() error) (op string, ok bool) {
	err := decodeBody(w, r, maxCommandBody, a.lim.CommandTimeout, body)
	if err == nil && check != nil {
		err = check()
	}
	if err == nil {
		err = required(body)
	}
	if err == nil {
		err = checkText("operator", **operator, maxOperatorLen)
	}
	if err != nil {
		a.refuse(w, r, name, err)
		return "", false
	}
	return Operator(r.Context(), **operator), true
}

func (a *api) simple(f func(string) error, name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body operatorBody
		op, ok := a.command(w, r, name, &body, &body.Operator, nil)
		if !ok {
			return
		}
		a.log.Info().Str("op", name).Str("operator", op).Msg("operator command")
		a.reply(w, nil, f(op))
	}
}

func (a *api) confirm(w http.ResponseWriter, r *http.Request) {
	var body confirmBody
	op, ok := a.command(w, r, "confirm", &body, &body.Operator, nil)
	if !ok {
		return
	}
	a.log.Info().Str("op", "confirm").Str("operator", op).Str("reason", *body.Point).Bool("go", *body.Go).Msg("operator command")
	a.reply(w, nil, a.c.Confirm(*body.Point, *body.Go, op))
}

func (a *api) rollback(w http.ResponseWriter, r *http.Request) {
	var body rollbackBody
	var t engine.RollbackTarget
	op, ok := a.command(w, r, "rollback", &body, &body.Operator, func() (err error) {
		if t, err = body.target(); err != nil {
			return err
		}
		if body.Reason != nil {
			if err := checkText("reason", *body.Reason, maxReasonLen); err != nil {
				return err
			}
			t = t.Because(*body.Reason)
		}
		return nil
	})
	if !ok {
		return
	}
	a.log.Info().Str("op", "rollback").Str("operator", op).Str("reason", t.String()).Str("why", t.Reason).Msg("operator command")
	start := time.Now()
	took, err := a.c.Rollback(r.Context(), t, op)
	a.reply(w, map[string]any{"took": took.String(), "answered": time.Since(start).String()}, err)
}

func (a *api) retry(w http.ResponseWriter, r *http.Request) {
	var body retryBody
	op, ok := a.command(w, r, "retry", &body, &body.Operator, func() error {
		if body.Batches == nil {
			return nil // required() names it
		}
		if len(*body.Batches) > maxRetryBatches {
			return badRequest(`"batches": %d batches, at most %d (give none to retry every rolled-back and held batch): nothing was retried`, len(*body.Batches), maxRetryBatches)
		}
		for _, i := range *body.Batches {
			if i < 0 {
				return badRequest(`"batches": %d: batches are numbered from 0: nothing was retried`, i)
			}
		}
		return nil
	})
	if !ok {
		return
	}
	a.log.Info().Str("op", "retry").Str("operator", op).Ints("batches", *body.Batches).Msg("operator command")
	a.reply(w, nil, a.c.Retry(*body.Batches, op))
}

func (a *api) reconcile(w http.ResponseWriter, r *http.Request) {
	var body reconcileBody
	op, ok := a.command(w, r, "reconcile", &body, &body.Operator, func() error {
		if body.Decision == nil {
			return nil // required() names it
		}
		if d := *body.Decision; d != DecideAdopt && d != DecideClear {
			return badRequest(`"decision" %q: want "adopt" or "clear" (cutover reconcile adopt | clear): nothing was changed`, d)
		}
		return nil
	})
	if !ok {
		return
	}
	a.log.Warn().Str("op", "reconcile").Str("operator", op).Str("reason", *body.Decision).Msg("operator command")
	a.reply(w, nil, a.c.Reconcile(r.Context(), *body.Decision, op))
}

func (a *api) run(w http.ResponseWriter, r *http.Request) {
	select {
	case a.runSlot <- struct{}{}:
		defer func() { <-a.runSlot }()
	default:
		a.refuse(w, r, "run", &httpError{code: http.StatusConflict, msg: "another run request is being received or started: try again when it is answered"})
		return
	}
	var body runBody
	var req client.RunRequest
	err := decodeBody(w, r, maxRunBody, 0, &body)
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) && ute.Value == "string" && (ute.Field == "runbook" || ute.Field == "inventory") {
		err = badRequest("%s: want an object with the file's name and content, not a path: the daemon opens no file named in a request; cutover run reads the files and sends them (is the client older than the daemon?)", ute.Field)
	}
	if err == nil {
		req, err = body.request()
	}
	if err != nil {
		a.refuse(w, r, "run", err)
		return
	}
	req.Operator = Operator(r.Context(), req.Operator)
	a.log.Info().Str("op", "run").Str("operator", req.Operator).Str("runbook", req.Runbook.Name).
		Int("runbook_bytes", len(req.Runbook.Content)).Str("inventory", req.Inventory.Name).
		Int("inventory_bytes", len(req.Inventory.Content)).Msg("operator command")
	a.reply(w, nil, a.c.Run(r.Context(), req))
}

// newServer returns the API's HTTP server with the limits lim.
func newServer(h http.Handler, lim apiLimits) *http.Server {
	return &http.Server{
		Handler:           h,
		ConnContext:       ConnContext,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
	}
}

// limitListener accepts at most cap(slots) connections at once; more wait
// in the socket's backlog. It is golang.org/x/net/netutil.LimitListener
// with two changes: its connections hand out the one they wrap (NetConn),
// which ConnContext needs for the peer's credentials; and when all slots
// are taken and a connection waits, kept-alive connections that idle
// between requests are closed to make room (their clients open a new one
// when they need it; a status poll is retried by net/http), so that
// holding connections open does not lock an operator out. Only
// connections inside a request, which the timeouts bound, are waited for.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	mu      sync.Mutex
	waiting bool                      // Accept waits for a slot
	idle    map[*limitedConn]struct{} // between requests (ConnState)
}

func newLimitListener(l net.Listener, n int) *limitListener {
	return &limitListener{Listener: l, slots: make(chan struct{}, n), done: make(chan struct{}), idle: map[*limitedConn]struct{}{}}
}

// Accept waits for a connection, then for a free slot for it.
func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if !l.acquire() {
		c.Close()
		return nil, net.ErrClosed
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

// acquire takes a slot for a connection that waits. When none is free, it
// closes an idle connection, or the next one to become idle; false when
// the listener is closed.
func (l *limitListener) acquire() bool {
	select {
	case l.slots <- struct{}{}:
		return true
	default:
	}
	l.mu.Lock()
	l.waiting = true
	var victim *limitedConn
	for c := range l.idle {
		victim = c
		delete(l.idle, c)
		break
	}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.waiting = false
		l.mu.Unlock()
	}()
	if victim != nil {
		victim.Close()
	}
	select {
	case l.slots <- struct{}{}:
		return true
	case <-l.done:
		return false
	}
}

// connState is the server's ConnState hook: it keeps track of the idle
// connections, and closes one that becomes idle while Accept waits.
func (l *limitListener) connState(c net.Conn, s http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	if s != http.StateIdle {
		delete(l.idle, lc)
		l.mu.Unlock()
		return
	}
	if l.waiting {
		l.mu.Unlock()
		lc.Close()
		return
	}
	l.idle[lc] = struct{}{}
	l.mu.Unlock()
}

// Close closes the listener and ends an Accept waiting for a slot.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitedConn frees its slot when it is closed.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// NetConn returns the connection underneath.
func (c *limitedConn) NetConn() net.Conn { return c.Conn }

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
