package layout

import "testing"

func TestHostsCapacity(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want uint32
	}{
		{0, 4096},
		{1, 4096},
		{2048, 4096},
		{2049, 8192},
		{50000, 131072},
		{65536, 131072},
		{65537, 262144},
		{1 << 30, 1 << 31},
		{1 << 31, 1 << 31}, // the largest power of two a uint32 holds
	} {
		if got := HostsCapacity(tt.n); got != tt.want {
			t.Errorf("HostsCapacity(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}
