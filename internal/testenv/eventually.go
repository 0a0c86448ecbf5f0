package testenv

import (
	"testing"
	"time"
)

// Eventually polls cond every poll until it returns "" or d passes, then
// fails the test with cond's last answer.
func Eventually(t testing.TB, d, poll time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, msg)
		}
		time.Sleep(poll)
	}
}
