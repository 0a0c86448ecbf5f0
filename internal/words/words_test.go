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
