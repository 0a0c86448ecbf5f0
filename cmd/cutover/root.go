package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/cutover/cutover/cutover/daemon/client"
)

// exitError carries a process exit code through cobra. Exit code 2 means
// "the input is wrong" (validate, plan), 1 everything else.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// app holds what every command shares: configuration and the logger.
type app struct {
	v   *viper.Viper
	log zerolog.Logger
	out io.Writer
	err io.Writer
}

func newRootCmd() *cobra.Command {
	a := &app{v: viper.New(), out: os.Stdout, err: os.Stderr}
	root := &cobra.Command{
		Use:   "cutover",
		Short: "Move live traffic of virtual servers between datacenters, batch by batch",
		Long: `cutover moves the traffic of many virtual servers from one site to another with BGP
announcements and nftables steering, in batches behind health gates, with a journal
and instant rollback.

Configuration comes from flags, CUTOVER_* environment variables and an optional
config file (--config), in that order of precedence.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.init(cmd)
		},
	}
	pf := root.PersistentFlags()
	pf.String("config", "", "config file (YAML); keys are the long flag names")
	pf.String("log-level", "info", "log level: trace, debug, info, warn, error")
	pf.String("log-format", "auto", "log format: json, console, or auto (console on a terminal)")

	root.AddCommand(
		newValidateCmd(a),
		newPlanCmd(a),
		newLabCmd(a),
		newBGPCmd(a),
		newBenchCmd(a),
		newServeCmd(a),
		newRunCmd(a),
		newStatusCmd(a),
		simpleCmd(a, "pause", "Pause the run before the next batch (a batch under way finishes)",
			(*client.Client).Pause, "paused"),
		simpleCmd(a, "resume", "Resume a paused run (after a restart: finish the interrupted batch)",
			(*client.Client).Resume, "resumed"),
		simpleCmd(a, "step", "Run one batch, then pause", (*client.Client).Step, "stepping one batch"),
		newConfirmCmd(a),
		newRollbackCmd(a),
		newReconcileCmd(a),
		newReportCmd(a),
	)
	return root
}

// init binds configuration sources and builds the logger.
func (a *app) init(cmd *cobra.Command) error {
	a.out, a.err = cmd.OutOrStdout(), cmd.ErrOrStderr()
	a.v.SetEnvPrefix("CUTOVER")
	a.v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	a.v.AutomaticEnv()
	if err := a.v.BindPFlags(cmd.Flags()); err != nil {
		return fmt.Errorf("bind flags: %w", err)
	}
	if f := a.v.GetString("config"); f != "" {
		a.v.SetConfigFile(f)
		if err := a.v.ReadInConfig(); err != nil {
			return fmt.Errorf("read config %s: %w", f, err)
		}
	}
	lvl, err := zerolog.ParseLevel(a.v.GetString("log-level"))
	if err != nil {
		return fmt.Errorf("--log-level %q: %w", a.v.GetString("log-level"), err)
	}
	var w io.Writer = a.err
	switch f := a.v.GetString("log-format"); f {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: a.err, TimeFormat: time.TimeOnly}
	case "auto":
		if fd, ok := a.err.(interface{ Fd() uintptr }); ok && isatty.IsTerminal(fd.Fd()) {
			w = zerolog.ConsoleWriter{Out: a.err, TimeFormat: time.TimeOnly}
		}
	default:
		return fmt.Errorf("--log-format %q: want json, console or auto", f)
	}
	a.log = zerolog.New(w).Level(lvl).With().Timestamp().Logger()
	return nil
}
