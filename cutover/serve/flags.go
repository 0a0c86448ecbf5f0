package serve

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/cutover/cutover/cutover/evidence"
	"github.com/cutover/cutover/cutover/notify"
)

// DefaultSocket is where the daemon listens and the CLI dials.
const DefaultSocket = "/run/cutover/cutover.sock"

// AddFlags declares cutover serve's flags on fs: the one list of the
// daemon's settings, for the CLI and for a rehearsal's child daemon.
func AddFlags(fs *pflag.FlagSet) {
	fs.String("socket", DefaultSocket, "unix socket of the local API")
	fs.String("socket-group", "", "group that may use the socket (mode 0660); empty: root's group")
	fs.String("state-dir", "/var/lib/cutover", "directory of the journal and the runbook snapshots")
	fs.String("metrics-addr", "", "serve Prometheus metrics on this address (e.g. 127.0.0.1:9469); empty: off")
	fs.String("probe-netns", "", "run the health probes from this network namespace")
	fs.String("dataplane-netns", "", "program nft and ip rules in this network namespace (overrides the runbook's dataplane.netns)")
	fs.Duration("drain-timeout", 0, "how long flows opened before a move keep their old path (0: the dataplane's default)")
	fs.Bool("correct-drift", false, "let the dataplane correct hand edits of its nft table instead of refusing")
	fs.Bool("withdraw-on-stop", false, "on a clean stop, withdraw every route and empty the nft table")
	fs.Bool("ignore-window", false, "run runbooks outside their change window (rehearsals in the lab; never for the night itself)")
	fs.String("webhook", "", "POST JSON notifications (go/no-go points, failed gates, end of run) to this URL")
	fs.String("evidence-dir", evidence.DefaultDir, "rehearsal records a runbook with require_rehearsal is checked against")
	fs.Bool("rehearsing", false, "this daemon runs a lab rehearsal: require_rehearsal does not apply (never for the night itself)")
	fs.String("tenant-notify", "", "YAML file routing tenant notices: per tenant a webhook URL and/or a file (see runbooks/README.md)")
	fs.String("operator-group", "", "unix group that may change a run; the socket's other users only observe (empty: every user operates)")
}

// Getter reads a setting by its flag name; *viper.Viper is one.
type Getter interface {
	GetString(key string) string
	GetBool(key string) bool
	GetDuration(key string) time.Duration
}

// OptionsFrom reads the settings declared by AddFlags. Notify is left to
// the caller (the webhook flag names where it sends).
func OptionsFrom(g Getter, log zerolog.Logger) Options {
	return Options{
		Socket:         g.GetString("socket"),
		SocketGroup:    g.GetString("socket-group"),
		StateDir:       g.GetString("state-dir"),
		MetricsAddr:    g.GetString("metrics-addr"),
		WithdrawOnStop: g.GetBool("withdraw-on-stop"),
		IgnoreWindow:   g.GetBool("ignore-window"),
		EvidenceDir:    g.GetString("evidence-dir"),
		Rehearsing:     g.GetBool("rehearsing"),
		TenantNotify:   g.GetString("tenant-notify"),
		OperatorGroup:  g.GetString("operator-group"),
		Backends: LiveBackends{Log: log, ProbeNetns: g.GetString("probe-netns"),
			DrainTimeout: g.GetDuration("drain-timeout"), CorrectDrift: g.GetBool("correct-drift"),
			DataplaneNetns: g.GetString("dataplane-netns")},
	}
}

// RunIfChild serves as the daemon and exits when this process was started
// as one by a rehearsal (the environment variable env is "1" and the first
// argument is "serve"); otherwise it returns at once. A test package that
// rehearses calls it first in TestMain, because the rehearsal starts the
// daemon from os.Executable(), which is then the test binary:
//
//	func TestMain(m *testing.M) {
//		lab.MaybeRunResponder()
//		serve.RunIfChild(rehearse.DaemonEnv)
//		os.Exit(m.Run())
//	}
//
// It takes the flags of AddFlags and --log-format, --log-level.
func RunIfChild(env string) {
	if os.Getenv(env) != "1" || len(os.Args) < 2 || os.Args[1] != "serve" {
		return
	}
	fs := pflag.NewFlagSet("serve", pflag.ExitOnError)
	AddFlags(fs)
	fs.String("log-format", "json", "")
	fs.String("log-level", "info", "")
	_ = fs.Parse(os.Args[2:])
	v := viper.New()
	_ = v.BindPFlags(fs)
	lvl, err := zerolog.ParseLevel(v.GetString("log-level"))
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	log := zerolog.New(os.Stderr).Level(lvl).With().Timestamp().Logger()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, OptionsFrom(v, log), log); err != nil {
		log.Error().Err(err).Msg("daemon failed")
		os.Exit(1)
	}
	os.Exit(0)
}

// Notifier returns the engine's notification hook for the webhook URL
// (nil for none), and the function that flushes it on the way out.
func Notifier(url string, log zerolog.Logger) (func(kind, msg string), func()) {
	if url == "" {
		return nil, func() {}
	}
	w := &notify.Webhook{URL: url, Log: log.With().Str("component", "notify").Logger()}
	return w.Notify, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := w.Close(ctx); err != nil {
			log.Warn().Err(err).Str("op", "notify").Msg("webhook not flushed")
		}
	}
}
