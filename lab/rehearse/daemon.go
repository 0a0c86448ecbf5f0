package rehearse

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/cutover"
)

// MaybeRunDaemon serves as the cutover daemon and exits when this process
// was started by a rehearsal (DaemonEnv set, first argument "serve");
// otherwise it returns at once. A test package that rehearses calls it
// first in TestMain, because the rehearsal starts the daemon from
// os.Executable(), which is then the test binary:
//
//	func TestMain(m *testing.M) {
//		lab.MaybeRunResponder()
//		rehearse.MaybeRunDaemon()
//		os.Exit(m.Run())
//	}
//
// It understands the flags the rehearsal passes, the same as cutover serve.
func MaybeRunDaemon() {
	if os.Getenv(DaemonEnv) != "1" || len(os.Args) < 2 || os.Args[1] != "serve" {
		return
	}
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	var o cutover.ServeOptions
	var logFormat, logLevel string
	fs.StringVar(&o.StateDir, "state-dir", "", "")
	fs.StringVar(&o.Socket, "socket", "", "")
	fs.StringVar(&o.Backends.DataplaneNetns, "dataplane-netns", "", "")
	fs.StringVar(&o.Backends.ProbeNetns, "probe-netns", "", "")
	fs.DurationVar(&o.Backends.DrainTimeout, "drain-timeout", 0, "")
	fs.StringVar(&logFormat, "log-format", "json", "")
	fs.StringVar(&logLevel, "log-level", "info", "")
	_ = fs.Parse(os.Args[2:])
	lvl, err := zerolog.ParseLevel(logLevel)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	log := zerolog.New(os.Stderr).Level(lvl).With().Timestamp().Logger()
	o.Backends.Log = log
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := cutover.Serve(ctx, o, log); err != nil {
		log.Error().Err(err).Msg("daemon failed")
		os.Exit(1)
	}
	os.Exit(0)
}
