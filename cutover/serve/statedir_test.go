package serve

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
)

// TestStateDir: the state directory is created 0700 when missing, and one
// that anybody else may write to, or that is not a real directory, is
// refused with the fix in the error.
func TestStateDir(t *testing.T) {
	uid := os.Geteuid()
	const unsafe = "; whoever can write there can change the journal the daemon re-applies at start; fix: "
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, tmp string) string // makes and returns the --state-dir
		root  bool                                  // the setup chowns: root only
		perm  os.FileMode                           // the mode of an accepted dir
		want  string                                // the error, with {dir}, {tmp} and {uid} filled in
	}{
		{name: "missing: created", setup: path("var/lib/cutover"), perm: 0o700},
		{name: "missing, trailing slash", setup: path("cutover/"), perm: 0o700},
		{name: "0700", setup: mkdir(0o700), perm: 0o700},
		{name: "0755 is writable by none but the owner", setup: mkdir(0o755), perm: 0o755},
		{name: "0777", setup: mkdir(0o777),
			want: "state dir {dir} is not safe to use: mode 0777 (group- and world-writable)" + unsafe + "chmod 700 {dir}"},
		{name: "0770", setup: mkdir(0o770),
			want: "state dir {dir} is not safe to use: mode 0770 (group-writable)" + unsafe + "chmod 700 {dir}"},
		{name: "1703", setup: mkdir(0o1703),
			want: "state dir {dir} is not safe to use: mode 1703 (world-writable)" + unsafe + "chmod 700 {dir}"},
		{name: "symlink", setup: symlink(""),
			want: "state dir {dir} is a symlink to {tmp}/state: the daemon does not follow it; " +
				"fix: set --state-dir to a directory owned by uid {uid} with mode 0700"},
		{name: "symlink, trailing slash", setup: symlink("/"),
			want: "state dir {dir} is a symlink to {tmp}/state: the daemon does not follow it; " +
				"fix: set --state-dir to a directory owned by uid {uid} with mode 0700"},
		{name: "file", setup: file,
			want: "state dir {dir} is a regular file, not a directory; " +
				"fix: move it away, or set --state-dir to a directory owned by uid {uid} with mode 0700"},
		{name: "a path to quote", setup: path("it's here/state"), perm: 0o700},
		{name: "a path to quote, 0777", setup: func(t *testing.T, tmp string) string {
			return mkdir(0o777)(t, filepath.Join(tmp, "it's here"))
		}, want: "state dir {dir} is not safe to use: mode 0777 (group- and world-writable)" + unsafe + `chmod 700 '{tmp}/it'\''s here/state'`},
		{name: "another owner", root: true, setup: chowned(0o700, 65534),
			want: "state dir {dir} is not safe to use: owned by uid 65534, not by uid 0 that the daemon runs as" + unsafe + "chown 0 {dir}"},
		{name: "another owner and 0777", root: true, setup: chowned(0o777, 65534),
			want: "state dir {dir} is not safe to use: owned by uid 65534, not by uid 0 that the daemon runs as, " +
				"mode 0777 (group- and world-writable)" + unsafe + "chown 0 {dir} && chmod 700 {dir}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && uid != 0 {
				t.Skip("chown to another uid needs root")
			}
			tmp := t.TempDir()
			dir := tc.setup(t, tmp)
			err := checkStateDir(dir, uid)
			if tc.want != "" {
				want := strings.NewReplacer("{dir}", filepath.Clean(dir), "{tmp}", tmp, "{uid}", strconv.Itoa(uid)).Replace(tc.want)
				if err == nil || err.Error() != want {
					t.Errorf("error\n got %v\nwant %s", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(filepath.Clean(dir))
			if err != nil {
				t.Fatal(err)
			}
			if !fi.IsDir() || fi.Mode().Perm() != tc.perm {
				t.Errorf("%s: mode %v, want a directory with %v", dir, fi.Mode(), tc.perm)
			}
		})
	}
}

// TestStateDirUmask: a state dir created under a umask that takes the
// owner's bits off is still 0700.
func TestStateDirUmask(t *testing.T) {
	old := syscall.Umask(0o277)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "state")
	if err := checkStateDir(dir, os.Geteuid()); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %v (%v), want 0700", fi.Mode(), err)
	}
}

// TestRunRefusesStateDir: the daemon does not start on an unsafe state
// dir: the error comes before anything is opened or listened on.
func TestRunRefusesStateDir(t *testing.T) {
	tmp := t.TempDir()
	dir := mkdir(0o777)(t, tmp)
	sock := filepath.Join(tmp, "api.sock")
	err := Run(context.Background(), Options{StateDir: dir, Socket: sock}, zerolog.Nop())
	want := "state dir " + dir + " is not safe to use: mode 0777 (group- and world-writable); whoever can write there " +
		"can change the journal the daemon re-applies at start; fix: chmod 700 " + dir
	if err == nil || err.Error() != want {
		t.Errorf("Run: %v\nwant %s", err, want)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket was made: %v", err)
	}
	if err := checkStateDir("", 0); err == nil || err.Error() !=
		"state dir: not set: set --state-dir to a directory owned by the daemon's user with mode 0700" {
		t.Errorf("empty state dir: %v", err)
	}
}

// path returns a setup that names a path under tmp and makes nothing.
func path(rel string) func(*testing.T, string) string {
	return func(_ *testing.T, tmp string) string {
		p := filepath.Join(tmp, rel)
		if strings.HasSuffix(rel, "/") {
			p += "/"
		}
		return p
	}
}

// mkdir returns a setup that makes tmp/state with mode perm (umask aside).
func mkdir(perm os.FileMode) func(*testing.T, string) string {
	return func(t *testing.T, tmp string) string {
		dir := filepath.Join(tmp, "state")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		mode := perm.Perm()
		if perm&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		return dir
	}
}

// chowned is mkdir, then the dir given to uid.
func chowned(perm os.FileMode, uid int) func(*testing.T, string) string {
	return func(t *testing.T, tmp string) string {
		dir := mkdir(perm)(t, tmp)
		if err := os.Chown(dir, uid, -1); err != nil {
			t.Fatal(err)
		}
		return dir
	}
}

// symlink returns a setup that makes tmp/link (+ tail) to a 0700 tmp/state.
func symlink(tail string) func(*testing.T, string) string {
	return func(t *testing.T, tmp string) string {
		real := mkdir(0o700)(t, tmp)
		link := filepath.Join(tmp, "link")
		if err := os.Symlink(real, link); err != nil {
			t.Fatal(err)
		}
		return link + tail
	}
}

func file(t *testing.T, tmp string) string {
	f := filepath.Join(tmp, "state")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
