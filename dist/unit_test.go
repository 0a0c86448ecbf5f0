package dist

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// unitKeys reads the [Service] keys of a unit file: every value of a key,
// in order (systemd adds up repeated keys such as AmbientCapabilities).
func unitKeys(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: not a key=value line: %q", path, line)
			}
			keys[k] = append(keys[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

func one(t *testing.T, keys map[string][]string, k string) string {
	t.Helper()
	v := keys[k]
	if len(v) != 1 {
		t.Fatalf("%s: %d values %q, want one", k, len(v), v)
	}
	return v[0]
}

// TestUnitHardening: the daemon runs as its own user with the network
// capabilities only, is a Type=notify service with a watchdog, and may
// open unix, inet and netlink sockets only.
func TestUnitHardening(t *testing.T) {
	keys := unitKeys(t, "cutover.service")
	for k, want := range map[string]string{
		"Type":                    "notify",
		"NotifyAccess":            "main",
		"WatchdogSec":             "30s",
		"User":                    "cutover",
		"Group":                   "cutover",
		"AmbientCapabilities":     "CAP_NET_ADMIN CAP_NET_BIND_SERVICE CAP_NET_RAW",
		"CapabilityBoundingSet":   "CAP_NET_ADMIN CAP_NET_BIND_SERVICE CAP_NET_RAW",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
		"NoNewPrivileges":         "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectKernelLogs":       "yes",
		"RestrictNamespaces":      "yes",
		"UMask":                   "0077",
	} {
		if got := one(t, keys, k); got != want {
			t.Errorf("%s=%s, want %s", k, got, want)
		}
	}
	if !slices.Contains(keys["SystemCallFilter"], "@system-service") {
		t.Errorf("SystemCallFilter %q: want @system-service", keys["SystemCallFilter"])
	}
	drop := unitKeys(t, "cutover-netns.conf")
	if got := one(t, drop, "AmbientCapabilities"); got != "CAP_SYS_ADMIN" {
		t.Errorf("netns drop-in AmbientCapabilities=%s, want CAP_SYS_ADMIN", got)
	}
	if got := one(t, drop, "RestrictNamespaces"); got != "net" {
		t.Errorf("netns drop-in RestrictNamespaces=%s, want net", got)
	}
}

var exposure = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// TestUnitSecurityScore: systemd-analyze rates the unit at 3.5 or better,
// alone and with the netns drop-in.
func TestUnitSecurityScore(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed (package systemd): the unit's exposure is not rated here")
	}
	unit, err := os.ReadFile("cutover.service")
	if err != nil {
		t.Fatal(err)
	}
	drop, err := os.ReadFile("cutover-netns.conf")
	if err != nil {
		t.Fatal(err)
	}
	// systemd reads a drop-in's [Service] after the unit's: the same as
	// the unit with the drop-in's lines at the end of its [Service].
	service, install, _ := strings.Cut(string(unit), "[Install]")
	_, dropService, _ := strings.Cut(string(drop), "[Service]")
	merged := filepath.Join(t.TempDir(), "cutover.service")
	if err := os.WriteFile(merged, []byte(service+dropService+"\n[Install]"+install), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path string }{{"cutover.service", "cutover.service"}, {"with cutover-netns.conf", merged}} {
		out, err := exec.Command("systemd-analyze", "security", "--offline=yes", tc.path).CombinedOutput()
		m := exposure.FindSubmatch(out)
		if m == nil {
			t.Fatalf("%s: systemd-analyze security: %v\n%s", tc.name, err, out)
		}
		score, _ := strconv.ParseFloat(string(m[1]), 64)
		t.Logf("%s: systemd-analyze security exposure %.1f", tc.name, score)
		if score > 3.5 {
			t.Errorf("%s: exposure %.1f, want 3.5 or better:\n%s", tc.name, score, out)
		}
	}
}
