package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/cutover/cutover/cutover/daemon/client"
	"github.com/cutover/cutover/cutover/engine"
)

// app holds what every command shares: configuration and the logger.
type app struct {
	v   *viper.Viper
	log zerolog.Logger
	in  io.Reader
	out io.Writer
	err io.Writer
	// logJSON: the log (standard error) is JSON, so the last error is
	// written as a JSON record too, unless plainErr: the command wrote
	// lines for people there (validate's mistakes).
	logJSON, plainErr bool
	// ran is set when a command starts its work: an error before that
	// (unknown command or flag, wrong arguments) is cobra's refusal of the
	// command line, bad input.
	ran bool
	// status asks the daemon at socket for its status, for completion (a
	// test replaces it).
	status func(ctx context.Context, socket string) (engine.Status, error)
}

func newApp() *app {
	return &app{v: viper.New(), in: os.Stdin, out: os.Stdout, err: os.Stderr,
		status: func(ctx context.Context, socket string) (engine.Status, error) {
			// No events: completion needs the state only.
			return client.New(socket).Status(ctx, math.MaxInt)
		}}
}

// execute runs the command line and returns the exit code. An error is
// written last to standard error, in the log's format: as a JSON record
// when the log is JSON, so that the stream holds one format.
func (a *app) execute(root *cobra.Command) int {
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	code := a.exitCode(err)
	w := root.ErrOrStderr()
	if a.logJSON && !a.plainErr {
		l := zerolog.New(w).With().Timestamp().Logger()
		l.Error().Str("op", cmd.CommandPath()).Int("exit_code", code).Err(err).Msg("command failed")
		return code
	}
	fmt.Fprintln(w, "cutover:", err)
	if code == exitUsage && !a.ran {
		fmt.Fprintf(w, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// errLines returns standard error for lines for people (not log records):
// once one is written, the error that ends the command follows as a line
// too.
func (a *app) errLines() io.Writer { return linesWriter{a} }

type linesWriter struct{ a *app }

func (w linesWriter) Write(p []byte) (int, error) {
	w.a.plainErr = true
	return w.a.err.Write(p)
}

// exitCode is err's exit code (see exitCodes); an error cobra returned
// before the command ran is bad input.
func (a *app) exitCode(err error) int {
	var ee *exitError
	if err != nil && !a.ran && !errors.As(err, &ee) {
		return exitUsage
	}
	return exitCode(err)
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "cutover",
		Short: "Move live traffic of virtual servers between datacenters, batch by batch",
		Long: `cutover moves the traffic of many virtual servers from one site to another with BGP
announcements and nftables steering, in batches behind health gates, with a journal
and instant rollback.

Every command that prints a result takes -o/--output FORMAT (text or json, and a few
more where the command has them); files are written with --out FILE or --dir DIR.
Results go to standard output, logs and progress to standard error (JSON when it is
not a terminal, see --log-format).

Configuration comes from flags, CUTOVER_* environment variables and an optional
config file (--config; its keys are the long flag names, one file can serve every
command, and a key that is no command's flag is an error), in that order of precedence.

` + exitCodeHelp(),
		Example: `  cutover validate runbooks/helse-nord/runbook.yaml
  cutover plan runbooks/helse-nord/runbook.yaml --summary
  cutover run runbooks/helse-nord/runbook.yaml
  cutover status -o json`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		DisableAutoGenTag: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.init(cmd)
		},
	}
	pf := root.PersistentFlags()
	pf.String("config", "", "config file (YAML, JSON or TOML); keys are the long flag names")
	pf.String("log-level", "info", "log level: trace, debug, info, warn, error")
	pf.String("log-format", "auto", "log format: json, console, or auto (console on a terminal)")
	_ = root.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions([]string{"trace", "debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions([]string{"json", "console", "auto"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("config", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"yaml", "yml", "json", "toml"}, cobra.ShellCompDirectiveFilterFileExt
	})

	root.AddCommand(
		newValidateCmd(a),
		newPlanCmd(a),
		newEdgeConfigCmd(a),
		newLabCmd(a),
		newBGPCmd(a),
		newBenchCmd(a),
		newServeCmd(a),
		newRunCmd(a),
		newStatusCmd(a),
		simpleCmd(a, "pause", "Pause the run before the next batch (a batch under way finishes)",
			(*client.Client).Pause, "paused", "  cutover pause\n  cutover pause -o json"),
		simpleCmd(a, "resume", "Resume a paused run (after a restart: finish the interrupted batch)",
			(*client.Client).Resume, "resumed", "  cutover resume\n  cutover resume --socket /run/cutover/cutover.sock"),
		simpleCmd(a, "step", "Run one batch, then pause", (*client.Client).Step, "stepping one batch",
			"  cutover step\n  cutover step && cutover status --watch"),
		newConfirmCmd(a),
		newRollbackCmd(a),
		newRetryCmd(a),
		newReconcileCmd(a),
		newReportCmd(a),
		newGenManCmd(),
	)
	walk(root, func(c *cobra.Command) {
		if c != root && c.HasSubCommands() && c.RunE == nil && c.Run == nil {
			groupCmd(c)
		}
		if run := c.RunE; run != nil {
			c.RunE = func(cmd *cobra.Command, args []string) error {
				a.ran = true
				return run(cmd, args)
			}
		}
	})
	return root
}

// groupCmd makes a command that only groups others (lab, bgp, bench)
// refuse an unknown subcommand with exit 2: cobra would show the help and
// exit 0, and a typo in a script (cutover lab rehaerse) would pass.
func groupCmd(c *cobra.Command) {
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		var names []string
		for _, s := range cmd.Commands() {
			if s.IsAvailableCommand() {
				names = append(names, s.Name())
			}
		}
		if near := nearestKey(args[0], names); near != "" {
			msg += fmt.Sprintf(": did you mean %q?", near)
		}
		return usageErr(errors.New(msg))
	}
	c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
}

// cobraOwn reports whether cmd is one cobra adds (help, completion, and
// the __complete requests of the shells): it takes no settings.
func cobraOwn(cmd *cobra.Command) bool {
	for c := cmd; c.HasParent(); c = c.Parent() {
		if c.Parent() != cmd.Root() {
			continue
		}
		switch c.Name() {
		case "help", "completion", cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd:
			return true
		}
	}
	return false
}

// init reads the settings and builds the logger.
func (a *app) init(cmd *cobra.Command) error {
	a.out, a.err = cmd.OutOrStdout(), cmd.ErrOrStderr()
	if cobraOwn(cmd) {
		return nil
	}
	v, err := flagSettings(cmd)
	if err != nil {
		return err
	}
	// A logger from the flags and the environment first, so that a
	// mistake in the config file is reported in the log's format.
	_ = a.setLogger(v)
	if err := readConfig(cmd, v); err != nil {
		return err
	}
	a.v = v
	if err := a.setLogger(v); err != nil {
		return err
	}
	return checkOutput(cmd, v)
}

// setLogger builds the logger of --log-level and --log-format: JSON, or
// lines for people on a terminal (console, or auto when standard error
// is a terminal).
func (a *app) setLogger(v *viper.Viper) error {
	lvl, err := zerolog.ParseLevel(v.GetString("log-level"))
	if err != nil {
		return usageErr(fmt.Errorf("--log-level %q: %w", v.GetString("log-level"), err))
	}
	var w io.Writer = a.err
	isJSON := true
	switch f := v.GetString("log-format"); f {
	case "json":
	case "console":
		w, isJSON = zerolog.ConsoleWriter{Out: a.err, TimeFormat: time.TimeOnly}, false
	case "auto":
		if fd, ok := a.err.(interface{ Fd() uintptr }); ok && isatty.IsTerminal(fd.Fd()) {
			w, isJSON = zerolog.ConsoleWriter{Out: a.err, TimeFormat: time.TimeOnly}, false
		}
	default:
		return usageErr(fmt.Errorf("--log-format %q: want json, console or auto", f))
	}
	a.log, a.logJSON = zerolog.New(w).Level(lvl).With().Timestamp().Logger(), isJSON
	return nil
}
