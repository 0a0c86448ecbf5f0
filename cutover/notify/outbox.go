package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// outbox is one destination's bounded queue and the one goroutine that
// delivers from it, retrying what may succeed later: what keeps a slow or
// dead destination from holding up whoever notifies. The webhook and the
// tenant file share it. Its counters work from the zero value; start it
// once before the first put.
type outbox struct {
	log     zerolog.Logger
	deliver func(ctx context.Context, body []byte) error
	backoff time.Duration // the wait before the first retry, doubled after

	mu      sync.Mutex // guards closed and sends on queue
	closed  bool
	queue   chan item
	done    chan struct{}
	ctx     context.Context // cancelled by close when its ctx ends
	cancel  context.CancelFunc
	sent    atomic.Uint64
	dropped atomic.Uint64
	failed  atomic.Uint64
}

// item is one notification waiting in an outbox.
type item struct {
	kind   string
	tenant string // "" for the run's own notifications
	body   []byte
}

// permanent marks a failure that a retry will not change.
type permanent struct{ error }

func (o *outbox) start(size int, backoff time.Duration, log zerolog.Logger, deliver func(context.Context, []byte) error) {
	o.log, o.backoff, o.deliver = log, backoff, deliver
	o.queue = make(chan item, size)
	o.done = make(chan struct{})
	o.ctx, o.cancel = context.WithCancel(context.Background())
	go o.loop()
}

// put encodes v and queues it; it never waits. After close, or with the
// queue full, the notification is dropped and counted.
func (o *outbox) put(kind, tenant string, v any) {
	body, err := json.Marshal(v)
	it := item{kind: kind, tenant: tenant, body: body}
	if err != nil {
		o.failed.Add(1)
		o.line(o.log.Warn(), it).Err(fmt.Errorf("encode notification: %w", err)).Msg("notification not delivered")
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		o.drop(it, "closed")
		return
	}
	select {
	case o.queue <- it:
	default:
		o.drop(it, "queue full")
	}
}

// line starts a log line about it with the fixed keys.
func (o *outbox) line(ev *zerolog.Event, it item) *zerolog.Event {
	ev = ev.Str("op", "notify").Str("kind", it.kind)
	if it.tenant != "" {
		ev = ev.Str("tenant", it.tenant)
	}
	return ev
}

func (o *outbox) drop(it item, why string) {
	o.dropped.Add(1)
	o.line(o.log.Warn(), it).Str("reason", why).Msg("notification dropped")
}

func (o *outbox) loop() {
	defer close(o.done)
	for it := range o.queue {
		if o.ctx.Err() != nil {
			o.drop(it, "closing")
			continue
		}
		if err := o.send(it.body); err != nil {
			o.failed.Add(1)
			o.line(o.log.Warn(), it).Err(err).Msg("notification not delivered")
			continue
		}
		o.sent.Add(1)
	}
}

// send delivers body, retrying (Retries times) what may succeed later.
func (o *outbox) send(body []byte) error {
	wait := o.backoff
	for attempt := 0; ; attempt++ {
		err := o.deliver(o.ctx, body)
		var perm permanent
		if err == nil || errors.As(err, &perm) || attempt == Retries {
			return err
		}
		select {
		case <-o.ctx.Done():
			return fmt.Errorf("%w (gave up: %w)", err, o.ctx.Err())
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// close stops taking notifications and waits until the queued ones are
// delivered or given up, or until ctx ends: then the one in flight is
// cancelled, the rest are dropped, and close returns ctx's error.
func (o *outbox) close(ctx context.Context) error {
	o.mu.Lock()
	if !o.closed {
		o.closed = true
		close(o.queue)
	}
	o.mu.Unlock()
	select {
	case <-o.done:
		o.cancel()
		return nil
	case <-ctx.Done():
		select {
		case <-o.done: // everything was delivered after all
			o.cancel()
			return nil
		default:
		}
		o.cancel()
		<-o.done
		return ctx.Err()
	}
}

func (o *outbox) stats() (sent, dropped, failed uint64) {
	return o.sent.Load(), o.dropped.Load(), o.failed.Load()
}
