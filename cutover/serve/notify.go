package serve

import (
	"context"
	"fmt"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/rs/zerolog"

	"github.com/cutover/cutover/cutover/engine"
)

// systemd's service protocol (Type=notify, WatchdogSec= in the unit): the
// daemon says READY=1 once its API listens (after it re-applied the
// journal's state), keeps STATUS= up to date for `systemctl status`, feeds
// the watchdog only while its engine answers, and says STOPPING=1 on the
// way out. Without NOTIFY_SOCKET (not started by systemd) all of it is a
// no-op.

// notifier speaks the protocol; send is sd.SdNotify, tests replace it.
type notifier struct {
	log  zerolog.Logger
	send func(state string) (bool, error)
}

func newNotifier(log zerolog.Logger) *notifier {
	return &notifier{log: log, send: func(state string) (bool, error) { return sd.SdNotify(false, state) }}
}

func (n *notifier) notify(state string) {
	if _, err := n.send(state); err != nil {
		n.log.Warn().Err(err).Str("op", "sd_notify").Msg("could not tell systemd")
	}
}

// statusLine is the one line systemctl status shows for the daemon.
func statusLine(st engine.Status) string {
	rs := st.State
	switch {
	case st.Unreconciled != nil:
		return "unreconciled: an earlier run's traces wait for cutover reconcile adopt or clear"
	case rs.RunID == "":
		return "idle"
	}
	line := fmt.Sprintf("%s %s: %d/%d VMs at the target", rs.Phase, rs.Runbook, st.MovedVMs, st.TotalVMs)
	if rs.Confirm != "" {
		line += ", waiting for go/no-go at " + rs.Confirm
	}
	if st.Journal.Unusable {
		line += ", journal unusable"
	}
	return line
}

// watchdog feeds systemd's watchdog every interval/2 while status answers
// within interval/4, and updates STATUS= when it changes. When the engine
// hangs (its lock held by a write to a hung disk, say) the watchdog goes
// hungry, and systemd kills and restarts the daemon, which re-announces
// from the journal while the peers keep its routes (graceful restart).
func (n *notifier) watchdog(ctx context.Context, interval time.Duration, status func() engine.Status) {
	tick := time.NewTicker(interval / 2)
	defer tick.Stop()
	last, missed := "", 0
	var done chan string // the status asked for, until it answers
	for {
		if done == nil {
			done = make(chan string, 1)
			go func(done chan<- string) { done <- statusLine(status()) }(done)
		}
		select {
		case line := <-done:
			done = nil
			n.notify("WATCHDOG=1")
			if line != last {
				n.notify("STATUS=" + line)
				last = line
			}
			if missed > 0 {
				n.log.Info().Str("op", "watchdog").Int("missed", missed).Msg("the engine answers again: feeding the watchdog")
				missed = 0
			}
		case <-time.After(interval / 4):
			missed++
			if missed == 1 {
				n.log.Error().Str("op", "watchdog").Dur("waited", interval/4).
					Msg("the engine does not answer: not feeding the watchdog; systemd restarts the daemon if it stays so")
			}
		case <-ctx.Done():
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// watchdogInterval is the unit's WatchdogSec for this process, 0 when
// there is none.
func watchdogInterval() time.Duration {
	d, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		return 0
	}
	return d
}
