package fileinfo

import (
	"io/fs"
	"testing"
)

func TestKind(t *testing.T) {
	for _, tc := range []struct {
		m    fs.FileMode
		want string
	}{
		{0o644, "a regular file"},
		{fs.ModeDir | 0o755, "a directory"},
		{fs.ModeNamedPipe, "a named pipe"},
		{fs.ModeSocket, "a socket"},
		{fs.ModeDevice | fs.ModeCharDevice, "a character device"},
		{fs.ModeDevice, "a block device"},
		{fs.ModeSymlink, "a symbolic link"},
		{fs.ModeIrregular, "a special file"},
	} {
		if got := Kind(tc.m); got != tc.want {
			t.Errorf("Kind(%v) = %q, want %q", tc.m, got, tc.want)
		}
	}
}
