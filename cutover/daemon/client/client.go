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
	"os/user"
	"strconv"
	"syscall"

	"github.com/cutover/cutover/cutover/engine"
)

// Client talks to the daemon's unix socket.
type Client struct {
	Socket string
	hc     *http.Client
}

// NewClient returns a client for the daemon at socket.
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
		if json.NewDecoder(resp.Body).Decode(&e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("daemon answered %s", resp.Status)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func whoami() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

type opBody struct {
	Operator string `json:"operator"`
}

// Run asks the daemon to start the runbook at path (absolute).
func (c *Client) Run(ctx context.Context, path string, yes bool) error {
	return c.do(ctx, http.MethodPost, "/v1/run", RunRequest{Runbook: path, Yes: yes, Operator: whoami()}, nil)
}

// Status returns the daemon's status with the events after since.
func (c *Client) Status(ctx context.Context, since int) (engine.Status, error) {
	var s engine.Status
	err := c.do(ctx, http.MethodGet, "/v1/status?since="+strconv.Itoa(since), nil, &s)
	return s, err
}

// Pause, Resume and Step send those commands.
func (c *Client) Pause(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/pause", opBody{whoami()}, nil)
}

// Resume continues a paused run.
func (c *Client) Resume(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/resume", opBody{whoami()}, nil)
}

// Step runs one batch, then pauses.
func (c *Client) Step(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/step", opBody{whoami()}, nil)
}

// Confirm answers a go/no-go point.
func (c *Client) Confirm(ctx context.Context, point string, goAhead bool) error {
	return c.do(ctx, http.MethodPost, "/v1/confirm", map[string]any{"point": point, "go": goAhead, "operator": whoami()}, nil)
}

// Rollback sends a rollback and returns how long the daemon took.
func (c *Client) Rollback(ctx context.Context, t engine.RollbackTarget) (string, error) {
	var out struct {
		Took string `json:"took"`
	}
	body := struct {
		engine.RollbackTarget
		Operator string `json:"operator"`
	}{t, whoami()}
	err := c.do(ctx, http.MethodPost, "/v1/rollback", body, &out)
	return out.Took, err
}

// Journal returns every journal record.
func (c *Client) Journal(ctx context.Context) ([]engine.JournalEntry, error) {
	var es []engine.JournalEntry
	err := c.do(ctx, http.MethodGet, "/v1/journal", nil, &es)
	return es, err
}

// RunRequest asks the daemon to start a runbook.
type RunRequest struct {
	Runbook  string `json:"runbook"` // absolute path, read by the daemon
	Yes      bool   `json:"yes"`     // answer every go/no-go point with go
	Operator string `json:"operator"`
}

// ErrorBody is the API's answer to a request it refused.
type ErrorBody struct {
	Error string `json:"error"`
}
