package words

import "testing"

func TestOrList(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"frr"}, "frr"},
		{[]string{"frr", "bird"}, "frr or bird"},
		{[]string{"frr", "bird", "gobgp"}, "frr, bird or gobgp"},
	} {
		if got := OrList(tc.in); got != tc.want {
			t.Errorf("OrList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPlural(t *testing.T) {
	for _, tt := range []struct {
		n    int
		word string
		want string
	}{
		{1, "VM", "1 VM"},
		{0, "VM", "0 VMs"},
		{2, "VM", "2 VMs"},
		{2, "prefix", "2 prefixes"},
		{3, "batch", "3 batches"},
		{2, "address", "2 addresses"},
		{2, "retry", "2 retries"},
		{2, "day", "2 days"},
		{2, "gate round", "2 gate rounds"},
		{2, "check", "2 checks"},
		{1, "retry", "1 retry"},
	} {
		if got := Plural(tt.n, tt.word); got != tt.want {
			t.Errorf("Plural(%d, %q) = %q, want %q", tt.n, tt.word, got, tt.want)
		}
	}
}
