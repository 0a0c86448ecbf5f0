package main

import (
	"context"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/cutover/serve"
)

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
--withdraw-on-stop it withdraws every route and empties its nft table first.

Its memory follows what it holds: a soft limit (Go's runtime) trails the live heap at
1.25 times plus 32 MiB, never below 128 MiB, so that after a batch of 10,000 routes
the collector gives pages back instead of letting the process grow to twice its heap.
GOMEMLIMIT in the environment replaces that with the operator's own limit.

It prints no result: it logs to standard error (--log-format json under systemd).`,
		Example: `  cutover serve --state-dir /var/lib/cutover --socket /run/cutover/cutover.sock --socket-group cutover
  cutover serve --metrics-addr 127.0.0.1:9469 --log-format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return a.serve(ctx)
		},
	}
	serve.AddFlags(c.Flags())
	return c
}

func (a *app) serve(ctx context.Context) error {
	v := a.v
	notify, closeNotify := serve.Notifier(v.GetString("webhook"), a.log)
	defer closeNotify()
	o := serve.OptionsFrom(v, a.log)
	o.Notify = notify
	return serve.Run(ctx, o, a.log)
}
