package main

import (
	"context"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/cutover"
)

const defaultSocket = "/run/cutover/cutover.sock"

func newServeCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the cutover daemon: it holds the BGP sessions, the nft table and the journal",
		Long: `serve runs the daemon that every other command talks to over a unix socket.

It owns the embedded BGP speaker, the nftables dataplane and the journal. After a
restart it replays the journal and re-announces what the peers held (they keep the
routes meanwhile by graceful restart), then waits for 'cutover resume'.

On SIGTERM or SIGINT it stops and, by default, keeps the state: peers hold the routes
for the graceful-restart time and the next start re-applies them. With
--withdraw-on-stop it withdraws every route and empties its nft table first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return a.serve(ctx)
		},
	}
	f := c.Flags()
	f.String("socket", defaultSocket, "unix socket of the local API")
	f.String("socket-group", "", "group that may use the socket (mode 0660); empty: root's group")
	f.String("state-dir", "/var/lib/cutover", "directory of the journal and the runbook snapshots")
	f.String("metrics-addr", "", "serve Prometheus metrics on this address (e.g. 127.0.0.1:9469); empty: off")
	f.String("probe-netns", "", "run the health probes from this network namespace")
	f.String("dataplane-netns", "", "program nft and ip rules in this network namespace (overrides the runbook's dataplane.netns)")
	f.Duration("drain-timeout", 0, "how long flows opened before a move keep their old path (0: the dataplane's default)")
	f.Bool("correct-drift", false, "let the dataplane correct hand edits of its nft table instead of refusing")
	f.Bool("withdraw-on-stop", false, "on a clean stop, withdraw every route and empty the nft table")
	f.String("webhook", "", "POST JSON notifications (go/no-go points, failed gates, end of run) to this URL")
	return c
}

func (a *app) serve(ctx context.Context) error {
	v := a.v
	notify, closeNotify := a.notifier(v.GetString("webhook"))
	defer closeNotify()
	return cutover.Serve(ctx, cutover.ServeOptions{
		Socket:         v.GetString("socket"),
		SocketGroup:    v.GetString("socket-group"),
		StateDir:       v.GetString("state-dir"),
		MetricsAddr:    v.GetString("metrics-addr"),
		WithdrawOnStop: v.GetBool("withdraw-on-stop"),
		Backends: cutover.LiveBackends{Log: a.log, ProbeNetns: v.GetString("probe-netns"),
			DrainTimeout: v.GetDuration("drain-timeout"), CorrectDrift: v.GetBool("correct-drift"),
			DataplaneNetns: v.GetString("dataplane-netns")},
		Notify: notify,
	}, a.log)
}
