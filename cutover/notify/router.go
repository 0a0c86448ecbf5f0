package notify

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Kind is what a tenant notice is about.
type Kind string

// Kinds of tenant notices.
const (
	BatchStart    Kind = "batch-start"    // a batch holding the tenant's VMs starts to move
	BatchCommit   Kind = "batch-commit"   // it passed its gates: the VMs stay at the target
	BatchRollback Kind = "batch-rollback" // it was rolled back: the VMs are at the source again
	RunEnd        Kind = "run-end"        // the run ended (done or aborted)
)

// Notice tells one tenant about one of its batches, or about the end of
// the run. It is the JSON body of a webhook's POST and a line of a file.
type Notice struct {
	Kind    Kind   `json:"kind"`
	Tenant  string `json:"tenant"`
	Run     string `json:"run"`
	Runbook string `json:"runbook"`
	// Batch is the batch the notice is about; nil for run-end.
	Batch *BatchRef `json:"batch,omitempty"`
	// VMs are the tenant's VMs in the batch (nothing of another tenant's);
	// at run-end, its VMs left at the source.
	VMs []string `json:"vms"`
	// Count is len(VMs) for a batch; at run-end, the tenant's VMs in the
	// run, End says where they ended.
	Count int       `json:"count"`
	End   *EndCount `json:"end,omitempty"`
	Time  time.Time `json:"time"`
	// Message says it in a sentence, for people.
	Message string `json:"message"`
	// Text is "cutover <kind> for <tenant>: <message>", for chat webhooks
	// (Slack, Mattermost) that show the text field; Notify fills it in.
	Text string `json:"text"`
}

// BatchRef names a batch of the run.
type BatchRef struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
}

// EndCount is where a tenant's VMs ended: at the target, or at the source
// (rolled back, held, or never moved).
type EndCount struct {
	AtTarget int `json:"at_target"`
	AtSource int `json:"at_source"`
	// Outcome is the run's: all-moved, partial or aborted.
	Outcome string `json:"outcome"`
}

// DefaultTenantQueue bounds the notices waiting for one webhook or file
// of a Router: a rollback of every batch sends one notice per batch and
// tenant at once.
const DefaultTenantQueue = 4096

// Options configure a Router.
type Options struct {
	// Log gets a line per notice that could not be delivered or was
	// dropped (webhook URLs redacted); the zero Logger logs nothing.
	Log zerolog.Logger
	// QueueSize bounds the notices waiting per webhook and per file; 0:
	// DefaultTenantQueue.
	QueueSize int

	backoff time.Duration // before a failed delivery's first retry; 0: 1 s
}

// Router sends each tenant's notices to the tenant's route, read from the
// routing file once (Load): a webhook (a JSON POST, as Webhook does), a
// file (a JSON line appended), or both; a tenant without a route of its
// own takes the route of "*", and without that its notices are dropped
// and counted (Stats). Notify never waits: each webhook and each file has
// its bounded queue, which one goroutine delivers from with retries.
type Router struct {
	routes   map[string]route // by tenant, AnyTenant included
	hooks    []*Webhook       // each URL once
	files    []*fileSink      // each file once
	unrouted atomic.Uint64
}

type route struct {
	hook *Webhook
	file *fileSink
}

// Load reads the routing file at path (see the package doc), checks it
// strictly and makes sure the daemon can append to each file, creating it
// when missing. Every mistake is reported at once, one a line, as
// "file:line: field: what (value "as written")"; a webhook's URL is shown
// redacted.
func Load(path string, o Options) (*Router, error) {
	data, err := readConfig(path)
	if err != nil {
		return nil, fmt.Errorf("tenant notices: %w", err)
	}
	c, pos, err := parseConfig(path, data)
	if err != nil {
		return nil, fmt.Errorf("tenant notices: %w", err)
	}
	if err := checkFiles(path, c, pos); err != nil {
		return nil, fmt.Errorf("tenant notices: %w", err)
	}
	return newRouter(c, o), nil
}

func newRouter(c config, o Options) *Router {
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultTenantQueue
	}
	if o.backoff <= 0 {
		o.backoff = time.Second
	}
	r := &Router{routes: map[string]route{}}
	hooks := map[string]*Webhook{}
	files := map[string]*fileSink{}
	for _, t := range slices.Sorted(maps.Keys(c.Tenants)) {
		rc := c.Tenants[t]
		var rt route
		if rc.Webhook != "" {
			if hooks[rc.Webhook] == nil {
				hooks[rc.Webhook] = &Webhook{URL: rc.Webhook, Log: o.Log, QueueSize: o.QueueSize, backoff: o.backoff}
				r.hooks = append(r.hooks, hooks[rc.Webhook])
			}
			rt.hook = hooks[rc.Webhook]
		}
		if rc.File != "" {
			p := filepath.Clean(rc.File)
			if files[p] == nil {
				files[p] = &fileSink{path: p, size: o.QueueSize, backoff: o.backoff, log: o.Log}
				r.files = append(r.files, files[p])
			}
			rt.file = files[p]
		}
		r.routes[t] = rt
	}
	return r
}

// Tenants are the tenants with a route of their own, sorted, and
// AnyTenant when there is a route for every other tenant.
func (r *Router) Tenants() []string { return slices.Sorted(maps.Keys(r.routes)) }

// Notify queues n for its tenant's webhook and file and returns at once;
// it fills in n.Text. A notice for a tenant without a route is dropped
// and counted.
func (r *Router) Notify(n Notice) {
	rt, ok := r.routes[n.Tenant]
	if !ok {
		rt, ok = r.routes[AnyTenant]
	}
	if !ok {
		r.unrouted.Add(1)
		return
	}
	if n.Text == "" {
		n.Text = fmt.Sprintf("cutover %s for %s: %s", n.Kind, n.Tenant, n.Message)
	}
	if n.VMs == nil {
		n.VMs = []string{}
	}
	if rt.hook != nil {
		rt.hook.send(string(n.Kind), n.Tenant, n)
	}
	if rt.file != nil {
		rt.file.send(string(n.Kind), n.Tenant, n)
	}
}

// Close stops taking notices and waits until the queued ones are
// delivered or given up, or until ctx ends (see Webhook.Close), for all
// webhooks and files at once.
func (r *Router) Close(ctx context.Context) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	add := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	for _, h := range r.hooks {
		wg.Go(func() { add(h.Close(ctx)) })
	}
	for _, f := range r.files {
		wg.Go(func() { add(f.close(ctx)) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// RouterStats count a Router's notices. A notice to a tenant with both a
// webhook and a file counts once for each.
type RouterStats struct {
	Sent     uint64 // delivered
	Dropped  uint64 // a queue was full, or the router closed
	Failed   uint64 // not delivered after the retries
	Unrouted uint64 // for a tenant without a route, and no "*"
}

// Stats counts the notices so far.
func (r *Router) Stats() RouterStats {
	s := RouterStats{Unrouted: r.unrouted.Load()}
	add := func(sent, dropped, failed uint64) {
		s.Sent += sent
		s.Dropped += dropped
		s.Failed += failed
	}
	for _, h := range r.hooks {
		add(h.Stats())
	}
	for _, f := range r.files {
		add(f.stats())
	}
	return s
}
