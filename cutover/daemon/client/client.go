package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/cutover/cutover/cutover/engine"
	"github.com/cutover/cutover/cutover/plan"
	"github.com/cutover/cutover/cutover/runbook"
)

// Client talks to the daemon's unix socket.
type Client struct {
	Socket string
	// Operator is the name the client gives for the person behind its
	// commands; "": whoami. The daemon believes it only from root (who
	// acts for others: sudo, a rehearsal answering as a second operator);
	// for any other user it records the unix user.
	Operator string
	hc       *http.Client
}

// operator names the person behind a command.
func (c *Client) operator() string {
	if c.Operator != "" {
		return c.Operator
	}
	return whoami()
}

// New returns a client for the daemon at socket.
func New(socket string) *Client {
	return &Client{Socket: socket, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}}
}

// ErrNoDaemon says that no daemon listens on the socket.
var ErrNoDaemon = errors.New("no cutover daemon is running")

// maxErrorBody is the most of a refusal the client reads: the daemon's
// answers to a bad runbook list every mistake, but not megabytes of them.
const maxErrorBody = 4 << 20

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://cutover"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w at %s: start it with cutover serve (or systemctl start cutover)", ErrNoDaemon, c.Socket)
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e ErrorBody
		if json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody)).Decode(&e) == nil && e.Error != "" {
			return &apiError{msg: e.Error, problems: e.Problems, status: resp.StatusCode}
		}
		return &apiError{msg: "daemon answered " + resp.Status, status: resp.StatusCode}
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// apiError is a refusal of the daemon. When the daemon found mistakes in
// a runbook or its inventory, it unwraps to them as a
// runbook.ValidationErrors (the CLI tells them by type).
type apiError struct {
	msg      string
	problems []runbook.FieldError
	status   int // the HTTP status of the answer
}

// StatusCode is the HTTP status of the daemon's answer: 400 and 413 for a
// request it could not read, 422 for mistakes in a runbook, 404 when
// there is no run, 409 for a command it refused in its state, 5xx when it
// failed.
func (e *apiError) StatusCode() int { return e.status }

func (e *apiError) Error() string { return e.msg }

func (e *apiError) Unwrap() error {
	if len(e.problems) == 0 {
		return nil
	}
	return runbook.ValidationErrors(e.problems)
}

// whoami names the operator for the daemon's audit trail (which records
// the socket peer's unix user in any case).
func whoami() string {
	if os.Getuid() == 0 {
		// sudo: the person is the user who ran it.
		if s := os.Getenv("SUDO_USER"); s != "" && s != "root" {
			return s
		}
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}

// Run reads the runbook at path and the inventory it names, with the
// rights of the calling user, and asks the daemon to start it: the daemon
// gets the files' contents (and their names, for messages) and opens no
// file by a name it was sent. A file that cannot be read fails here, with
// the error of the file system underneath (and as a
// runbook.ValidationErrors, as `cutover validate` reports it); mistakes
// the daemon finds in the runbook are a runbook.ValidationErrors too.
// A relative path is made absolute: it names the run in the daemon's
// status and journal.
func (c *Client) Run(ctx context.Context, path string, yes bool) error {
	req, err := ReadRun(path)
	if err != nil {
		return err
	}
	req.Yes, req.Operator = yes, c.operator()
	return c.do(ctx, http.MethodPost, "/v1/run", req, nil)
}

// ReadRun reads the runbook at path and its inventory into a run request
// (see Run), without Yes and Operator.
func ReadRun(path string) (RunRequest, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return RunRequest{}, err
	}
	snap, err := plan.ReadSnapshot(abs)
	if err != nil {
		return RunRequest{}, err
	}
	return RunRequest{
		Runbook:   File{Name: snap.RunbookName, Content: nonNil(snap.Runbook)},
		Inventory: File{Name: snap.InventoryName, Content: nonNil(snap.Inventory)},
	}, nil
}

// nonNil makes an empty file go out as "": null is a missing field.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Status returns the daemon's status with the events after since.
func (c *Client) Status(ctx context.Context, since int) (engine.Status, error) {
	var s engine.Status
	err := c.do(ctx, http.MethodGet, "/v1/status?since="+strconv.Itoa(since), nil, &s)
	return s, err
}

// Pause stops the run before the next batch.
func (c *Client) Pause(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/pause", OperatorRequest{c.operator()}, nil)
}

// Resume continues a paused run.
func (c *Client) Resume(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/resume", OperatorRequest{c.operator()}, nil)
}

// Step runs one batch, then pauses.
func (c *Client) Step(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/step", OperatorRequest{c.operator()}, nil)
}

// Confirm answers a go/no-go point.
func (c *Client) Confirm(ctx context.Context, point string, goAhead bool) error {
	return c.do(ctx, http.MethodPost, "/v1/confirm", ConfirmRequest{Point: point, Go: goAhead, Operator: c.operator()}, nil)
}

// Rollback sends a rollback and returns how long its change took (BGP and
// nft, as the engine measured and journaled it): engine.AllBatches as {"all": true}, OnlyBatch(n) as {"batch": n},
// BatchesFrom(n) as {"to": n}. A target without a kind (the zero value)
// is refused here and sends nothing.
func (c *Client) Rollback(ctx context.Context, t engine.RollbackTarget) (string, error) {
	req, err := NewRollbackRequest(t, c.operator())
	if err != nil {
		return "", err
	}
	var out struct {
		Took string `json:"took"`
	}
	err = c.do(ctx, http.MethodPost, "/v1/rollback", req, &out)
	return out.Took, err
}

// Retry takes rolled-back or held batches back to pending: the run moves
// them again through the same checks. No batches: every rolled-back and
// held batch.
func (c *Client) Retry(ctx context.Context, batches []int) error {
	if batches == nil {
		batches = []int{}
	}
	return c.do(ctx, http.MethodPost, "/v1/retry", RetryRequest{Batches: batches, Operator: c.operator()}, nil)
}

// NewRollbackRequest is the wire form of t (see Rollback).
func NewRollbackRequest(t engine.RollbackTarget, operator string) (RollbackRequest, error) {
	r := RollbackRequest{Operator: operator, Reason: t.Reason}
	switch t.Kind {
	case engine.TargetAll:
		r.All = true
	case engine.TargetOnly:
		r.Batch = &t.Batch
	case engine.TargetFrom:
		r.To = &t.Batch
	default:
		return r, fmt.Errorf("rollback: no target: give all, one batch or a batch and every later one")
	}
	return r, nil
}

// Reconcile decides on an earlier run's traces that the daemon found
// while its journal held no run (status phase "unreconciled"): "adopt"
// takes them as they are, "clear" takes them away.
func (c *Client) Reconcile(ctx context.Context, decision string) error {
	return c.do(ctx, http.MethodPost, "/v1/reconcile", ReconcileRequest{Decision: decision, Operator: c.operator()}, nil)
}

// Journal returns every journal record.
func (c *Client) Journal(ctx context.Context) ([]engine.JournalEntry, error) {
	var es []engine.JournalEntry
	err := c.do(ctx, http.MethodGet, "/v1/journal", nil, &es)
	return es, err
}

// The request bodies of the API. The daemon decodes them strictly: exactly
// one JSON object per request, no unknown fields, every field present
// (except the alternatives of RollbackRequest), within a size limit.

// File is a file the client read with the operator's rights, sent whole.
type File struct {
	// Name is where the client read the file from, for messages and the
	// run's record; the daemon never opens it.
	Name string `json:"name"`
	// Content is the file's bytes (base64 in JSON).
	Content []byte `json:"content"`
}

// RunRequest is the body of POST /v1/run: start a runbook.
type RunRequest struct {
	Runbook   File   `json:"runbook"`
	Inventory File   `json:"inventory"` // the inventory the runbook names
	Yes       bool   `json:"yes"`       // answer every go/no-go point with go
	Operator  string `json:"operator"`
}

// OperatorRequest is the body of POST /v1/pause, /v1/resume and /v1/step.
type OperatorRequest struct {
	Operator string `json:"operator"`
}

// ConfirmRequest is the body of POST /v1/confirm.
type ConfirmRequest struct {
	Point    string `json:"point"` // empty: the point the run waits at
	Go       bool   `json:"go"`
	Operator string `json:"operator"`
}

// RollbackRequest is the body of POST /v1/rollback. Exactly one of All
// (true), Batch and To is given: a body without one is refused, never
// taken for "every batch".
type RollbackRequest struct {
	All      bool   `json:"all,omitempty"`    // every batch; the run ends
	Batch    *int   `json:"batch,omitempty"`  // only this batch; the run pauses
	To       *int   `json:"to,omitempty"`     // this batch and every later one; the run pauses
	Reason   string `json:"reason,omitempty"` // the operator's why, for the journal and the report
	Operator string `json:"operator"`
}

// RetryRequest is the body of POST /v1/retry.
type RetryRequest struct {
	Batches  []int  `json:"batches"` // empty: every rolled-back and held batch
	Operator string `json:"operator"`
}

// ReconcileRequest is the body of POST /v1/reconcile.
type ReconcileRequest struct {
	Decision string `json:"decision"` // "adopt" or "clear"
	Operator string `json:"operator"`
}

// ErrorBody is the API's answer to a request it refused.
type ErrorBody struct {
	Error string `json:"error"`
	// Problems are the mistakes found in a runbook or its inventory, when
	// that is why a run was refused.
	Problems []runbook.FieldError `json:"problems,omitempty"`
}
