package auth

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// TestLoginLimiterBounded: an attacker with more addresses than the table
// holds keeps it at maxClients entries, and a failure costs the same with
// the table full as empty (no scan of the table).
func TestLoginLimiterBounded(t *testing.T) {
	l := newLoginLimiter([]Account{{user: "op", password: "x", role: Operator}})
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	l.sleep = func(_ context.Context, d time.Duration) error { now = now.Add(max(d, 0)); return nil }
	fail := func(i int) {
		done, err := l.admit(context.Background(), netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String(), "op", "")
		if err != nil {
			t.Fatal(err)
		}
		done(false)
	}
	timeRun := func(from, n int) time.Duration {
		start := time.Now()
		for i := from; i < from+n; i++ {
			fail(i)
		}
		return time.Since(start) / time.Duration(n)
	}
	empty := timeRun(0, 2000)
	timeRun(2000, 3*maxClients)
	full := timeRun(4*maxClients, 2000)
	if n := l.clients.len(); n != maxClients {
		t.Errorf("client table holds %d, want %d", n, maxClients)
	}
	t.Logf("per failure: %v with a small table, %v with a full one", empty, full)
	if full > 10*empty+20*time.Microsecond {
		t.Errorf("a failure takes %v with a full table, %v with a small one", full, empty)
	}
}
