package rehearse

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Confinement starts a rehearsal's daemon the way the systemd unit runs
// it: as its own user and group with only the unit's capabilities
// (through setpriv), instead of as root. A rehearsal that passes so shows
// that the unit's hardening leaves the daemon all it needs.
type Confinement struct {
	UID, GID int
	// Caps are the capabilities, as the unit names them
	// ("CAP_NET_ADMIN"); they are the ambient, inheritable and bounding
	// sets.
	Caps []string
}

// setprivArgs is the setpriv prefix that starts a command confined by c.
func (c *Confinement) setprivArgs() []string {
	var caps []string
	for _, cp := range c.Caps {
		caps = append(caps, "+"+strings.ToLower(strings.TrimPrefix(cp, "CAP_")))
	}
	set := "-all"
	if len(caps) > 0 {
		set += "," + strings.Join(caps, ",")
	}
	return []string{"setpriv", fmt.Sprintf("--reuid=%d", c.UID), fmt.Sprintf("--regid=%d", c.GID), "--clear-groups",
		"--inh-caps=" + set, "--ambient-caps=" + set, "--bounding-set=" + set, "--no-new-privs", "--"}
}

// prepare makes what a confined daemon needs in the lab's directory dir:
// its state directory and a directory for its socket, both its own, and a
// copy of the binary it can execute. It returns the socket's path and the
// binary's.
func (c *Confinement) prepare(dir, stateDir, binary string) (sock, bin string, err error) {
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{stateDir, 0o700}, {filepath.Join(dir, "run"), 0o755}, {filepath.Join(dir, "bin"), 0o755}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return "", "", err
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return "", "", err
		}
		if d.path != filepath.Join(dir, "bin") {
			if err := os.Chown(d.path, c.UID, c.GID); err != nil {
				return "", "", err
			}
		}
	}
	// The daemon must reach its binary and socket through dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "bin", filepath.Base(binary))
	if err := copyFile(binary, bin, 0o755); err != nil {
		return "", "", fmt.Errorf("copy the daemon's binary for its user: %w", err)
	}
	return filepath.Join(dir, "run", "cutover.sock"), bin, nil
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// capNames are the capabilities by number, as /proc/PID/status counts
// them (linux/capability.h), for those a unit may grant the daemon.
var capNames = map[int]string{12: "CAP_NET_ADMIN", 10: "CAP_NET_BIND_SERVICE", 13: "CAP_NET_RAW", 21: "CAP_SYS_ADMIN",
	0: "CAP_CHOWN", 1: "CAP_DAC_OVERRIDE", 2: "CAP_DAC_READ_SEARCH", 3: "CAP_FOWNER", 5: "CAP_KILL", 6: "CAP_SETGID", 7: "CAP_SETUID"}

// check reads the running daemon's user and effective capabilities from
// /proc and compares them with c: the evidence that the rehearsal ran
// confined.
func (c *Confinement) check(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	var uid, gid string
	var eff uint64
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		switch {
		case k == "Uid" && len(f) > 0:
			uid = f[0]
		case k == "Gid" && len(f) > 0:
			gid = f[0]
		case k == "CapEff" && len(f) > 0:
			_, _ = fmt.Sscanf(f[0], "%x", &eff)
		}
	}
	var have []string
	for bit := range 64 {
		if eff&(1<<bit) != 0 {
			name, ok := capNames[bit]
			if !ok {
				name = fmt.Sprintf("cap %d", bit)
			}
			have = append(have, name)
		}
	}
	slices.Sort(have)
	want := slices.Clone(c.Caps)
	slices.Sort(want)
	got := fmt.Sprintf("the daemon (pid %d) runs as uid %s gid %s with capabilities %s", pid, uid, gid, strings.Join(have, " "))
	if uid != fmt.Sprint(c.UID) || gid != fmt.Sprint(c.GID) || !slices.Equal(have, want) {
		return "", fmt.Errorf("%s; want uid %d gid %d with %s", got, c.UID, c.GID, strings.Join(want, " "))
	}
	return got, nil
}
