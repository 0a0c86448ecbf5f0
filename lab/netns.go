package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// netnsDir is where `ip netns` keeps named namespaces.
const netnsDir = "/run/netns"

// addNamespace creates a named namespace with `ip netns add`, which also
// makes /run/netns a shared mount so that deleting it works from any mount
// namespace.
func addNamespace(ctx context.Context, ns string) error {
	return runCmd(ctx, "add namespace "+ns, "ip", "netns", "add", ns)
}

// deleteNamespace removes a named namespace; it disappears once the last
// process in it is gone.
func deleteNamespace(ctx context.Context, ns string) error {
	err := runCmd(ctx, "delete namespace "+ns, "ip", "netns", "delete", ns)
	if err != nil {
		if _, serr := os.Stat(filepath.Join(netnsDir, ns)); errors.Is(serr, os.ErrNotExist) {
			return nil
		}
	}
	return err
}

// labNamespaces lists the namespaces of the lab called name:
// cutover-<name>-<node> where node has no '-' (so lab "a" never matches
// lab "a-b"'s cutover-a-b-edge).
func labNamespaces(name string) ([]string, error) {
	ents, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(NamespacePrefix+name+"-") + `[a-z0-9_]+$`)
	var out []string
	for _, e := range ents {
		if re.MatchString(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// namespacePids lists the processes whose network namespace is ns, except
// this process.
func namespacePids(ns string) ([]int, error) {
	var want syscall.Stat_t
	if err := syscall.Stat(filepath.Join(netnsDir, ns), &want); err != nil {
		return nil, fmt.Errorf("stat namespace %s: %w", ns, err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	self := os.Getpid()
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) != nil {
			continue // gone, or a kernel thread
		}
		if st.Dev == want.Dev && st.Ino == want.Ino {
			out = append(out, pid)
		}
	}
	return out, nil
}

// alive reports whether pid is a running process (not gone, not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses, which may contain
	// spaces or parentheses itself.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	s := b[i+2]
	return s != 'Z' && s != 'X'
}

// processMatches reports whether pid is alive and its command line contains
// match: a pid from a state file is signalled only if it is still ours.
func processMatches(pid int, match string) bool {
	if pid <= 0 || !alive(pid) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return match == "" || strings.Contains(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})), match)
}

// frrTmpDirs returns the /var/tmp/frr directories of the FRR daemons among
// pids.
func frrTmpDirs(pids map[int]string) []string {
	var out []string
	for pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil {
			continue
		}
		if comm := strings.TrimSpace(string(b)); slices.Contains(frrDaemons, comm) {
			out = append(out, fmt.Sprintf("/var/tmp/frr/%s.%d", comm, pid))
		}
	}
	return out
}

// stopProcesses sends SIGTERM to pids, waits up to 5 s, then SIGKILLs what
// is left and waits again. It signals by pid only.
func stopProcesses(ctx context.Context, pids map[int]string, log zerolog.Logger) error {
	if len(pids) == 0 {
		return nil
	}
	list := make([]int, 0, len(pids))
	for pid := range pids {
		list = append(list, pid)
	}
	slices.Sort(list)
	for _, pid := range list {
		log.Debug().Int("pid", pid).Str("process", pids[pid]).Msg("SIGTERM")
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	left := waitGone(ctx, list, 5*time.Second)
	for _, pid := range left {
		log.Warn().Int("pid", pid).Str("process", pids[pid]).Msg("did not stop on SIGTERM; SIGKILL")
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if left = waitGone(ctx, left, 3*time.Second); len(left) > 0 {
		var names []string
		for _, pid := range left {
			names = append(names, fmt.Sprintf("%d (%s)", pid, pids[pid]))
		}
		return fmt.Errorf("processes still alive after SIGKILL: %s", strings.Join(names, ", "))
	}
	return nil
}

// waitGone waits until no pid in pids is alive, and returns those still
// alive at the deadline.
func waitGone(ctx context.Context, pids []int, d time.Duration) []int {
	deadline := time.Now().Add(d)
	for {
		var left []int
		for _, pid := range pids {
			if alive(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return left
		}
		pids = left
		time.Sleep(20 * time.Millisecond)
	}
}

// runCmd runs a short command and returns its output in the error.
func runCmd(ctx context.Context, what string, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", what, err, strings.TrimSpace(string(out)))
	}
	return nil
}
