// Package notify tells people outside the terminal about a run. A
// Webhook receives a JSON POST at each go/no-go point, failed gate and end
// of run (the engine's Config.Notify). A Router tells each tenant about
// the batches that hold its VMs (start, commit, rollback) and the end of
// the run, through the tenant's webhook or file, as the daemon's routing
// file (cutover serve --tenant-notify) says:
//
//	tenants:
//	  helse-bodo:
//	    webhook: https://hooks.example/abc   # a JSON POST per notice
//	  unn:
//	    file: /var/log/cutover/unn.jsonl     # a JSON line per notice, appended
//	  "*":                                   # every tenant without a route
//	    file: /var/log/cutover/tenants.jsonl
//
// Delivery never holds the engine up: notifications go into a bounded
// queue per destination that one goroutine sends from, with retries; when
// the queue is full, new ones are dropped and counted.
package notify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/internal/redact"
)

// Defaults of a Webhook.
const (
	DefaultTimeout   = 5 * time.Second
	DefaultQueueSize = 64
	// Retries is how often a failed delivery is tried again (after 1s,
	// then 2s): for a webhook a server error, 429 or a network error
	// (other 4xx answers are not retried); for a tenant's file any error.
	Retries = 2
)

// Payload is the JSON body of each POST.
type Payload struct {
	// Kind is "confirm" (a go/no-go point waits), "gate-failed" or "done".
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
	Run     string    `json:"run,omitempty"`
	// Text is "cutover <kind>: <message>", for chat webhooks (Slack,
	// Mattermost) that show the text field.
	Text string `json:"text"`
}

// Webhook posts notifications to URL. Set the fields before the first
// Notify; the zero values of the others are sane. Close it to flush.
//
// URL often carries a secret (a chat webhook's token in its path, an API
// key in its query): the log lines and errors name it redacted
// (internal/redact), never as written.
type Webhook struct {
	URL string
	// Timeout bounds one attempt; 0: DefaultTimeout.
	Timeout time.Duration
	// Client sends the requests; nil: a client of its own.
	Client *http.Client
	// Run labels every payload, e.g. the daemon's site or run (optional).
	Run string
	// QueueSize bounds the notifications waiting; 0: DefaultQueueSize.
	QueueSize int
	// Log gets a line per notification that could not be delivered or was
	// dropped; the zero Logger logs nothing.
	Log zerolog.Logger
	// Now stamps payloads; nil: time.Now.
	Now func() time.Time

	// backoff is the wait before the first retry, doubled after; tests
	// shorten it.
	backoff time.Duration

	once sync.Once
	ob   outbox
}

func (w *Webhook) start() {
	w.once.Do(func() {
		size := w.QueueSize
		if size <= 0 {
			size = DefaultQueueSize
		}
		if w.Timeout <= 0 {
			w.Timeout = DefaultTimeout
		}
		if w.Client == nil {
			w.Client = &http.Client{}
		}
		if w.Now == nil {
			w.Now = time.Now
		}
		if w.backoff <= 0 {
			w.backoff = time.Second
		}
		w.ob.start(size, w.backoff, w.Log, w.post)
	})
}

// Notify queues a notification and returns at once. It has the signature
// of cutover.EngineConfig.Notify. After Close, or with the queue full, the
// notification is dropped and counted.
func (w *Webhook) Notify(kind, msg string) {
	w.start()
	w.ob.put(kind, "", Payload{Kind: kind, Message: msg, Time: w.Now().UTC(), Run: w.Run, Text: "cutover " + kind + ": " + msg})
}

// send queues v, a tenant's notice, like Notify.
func (w *Webhook) send(kind, tenant string, v any) {
	w.start()
	w.ob.put(kind, tenant, v)
}

// post makes one attempt at delivering body.
func (w *Webhook) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return permanent{fmt.Errorf("post notification: %w", redact.Wrap(err, w.URL))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cutover-notify")
	resp, err := w.Client.Do(req)
	if err != nil {
		// net/http's error names the URL (and a redirect's).
		return fmt.Errorf("post notification: %w", redact.Wrap(err, w.URL))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("post notification to %s: %s", redact.URL(w.URL), resp.Status)
	}
	return permanent{fmt.Errorf("post notification to %s: %s", redact.URL(w.URL), resp.Status)}
}

// Close stops taking notifications and waits until the queued ones are
// delivered or given up, or until ctx ends: then the one in flight is
// cancelled, the rest are dropped, and Close returns ctx's error.
func (w *Webhook) Close(ctx context.Context) error {
	w.start()
	if err := w.ob.close(ctx); err != nil {
		return fmt.Errorf("close webhook: %w", err)
	}
	return nil
}

// Stats counts the notifications delivered, dropped (queue full or
// closed) and failed (not delivered after the retries).
func (w *Webhook) Stats() (sent, dropped, failed uint64) { return w.ob.stats() }
