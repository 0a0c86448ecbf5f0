package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/cutover/cutover/cutover/daemon"
	"github.com/cutover/cutover/cutover/engine"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// ServeOptions are the daemon's settings (cutover serve's flags).
type Options struct {
	Socket         string
	SocketGroup    string
	StateDir       string
	MetricsAddr    string // "": no metrics listener
	WithdrawOnStop bool
	Backends       LiveBackends
	Notify         func(kind, msg string)
}

// Serve runs the daemon until ctx ends: it opens the state (re-applying a
// journaled state at once), serves the local API and, if asked, metrics,
// and on the way out keeps or withdraws the routes.
func Run(ctx context.Context, o Options, log zerolog.Logger) error {
	dlog := log.With().Str("component", "daemon").Logger()
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	start := time.Now()
	d, err := daemon.Open(ctx, daemon.Config{StateDir: o.StateDir, Backends: o.Backends, Log: log,
		Metrics: engine.NewMetrics(reg), Notify: o.Notify})
	if err != nil {
		return err
	}
	st := d.Status(0).State
	dlog.Info().Str("op", "start").Dur("took", time.Since(start)).Str("phase", string(st.Phase)).
		Int("batches", len(st.Applied)).Msg("daemon ready")
	l, err := daemon.Listen(o.Socket, o.SocketGroup)
	if err != nil {
		_ = d.Close(false)
		return err
	}
	if o.MetricsAddr != "" {
		ml, err := net.Listen("tcp", o.MetricsAddr)
		if err != nil {
			l.Close()
			_ = d.Close(false)
			return fmt.Errorf("metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = msrv.Serve(ml) }()
		defer msrv.Close()
	}
	serr := d.Serve(ctx, l)
	dlog.Info().Str("op", "stop").Bool("withdraw", o.WithdrawOnStop).Msg("daemon stopping")
	cerr := d.Close(o.WithdrawOnStop)
	_ = os.Remove(o.Socket)
	if serr != nil && !errors.Is(serr, context.Canceled) {
		return serr
	}
	return cerr
}
