// Package dist holds what ships beside the binary (the systemd unit, the
// Grafana dashboard, the Prometheus alert rules) and the tests that check
// those files: the unit's hardening, the rules with promtool, the
// dashboard against the metrics the daemon exports.
package dist
