// Package poll is the one way stripeq's tests wait for something that
// happens in the background: a record written by the worker, a process
// that answers, a key that expires, a count that reaches its total.
//
//   - [Until] calls a condition until it holds.
//   - [Value] calls a function until it returns no error, and returns its
//     value; [Check] is Value without a value.
//   - [Signal] waits for a channel: a process's exit, a handler's call.
//   - [Wait] is Until for code without a test (a harness such as
//     deploy/bench, or a helper that returns errors).
//
// Each checks every [Interval] and gives up after its timeout, failing the
// test with what it was waiting for. A negative check ("X did not happen")
// should first wait, with one of these, for a signal that proves the work
// was done (a metric, a log line, an outcome), then assert; not sleep.
//
// Test support internal to this module, with no compatibility promise.
package poll

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// Interval is how often Until, Value, Check and Wait call their condition.
const Interval = 20 * time.Millisecond

// Until calls cond at once, then every Interval, until it returns true, and
// returns how long that took. When timeout passes first it fails t with
// "after <timeout>: still waiting for <what>" (t.Fatalf), so it must be
// called from the test's goroutine.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	took, err := wait(timeout, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
	if err != nil {
		t.Fatalf("after %v: still waiting for %s", timeout, what)
	}
	return took
}

// Value calls f at once, then every Interval, until it returns a nil error,
// and returns the value f returned then. When timeout passes first it fails
// t with what and f's last error (t.Fatalf).
func Value[T any](t testing.TB, timeout time.Duration, what string, f func() (T, error)) T {
	t.Helper()
	var v T
	_, err := wait(timeout, func() error {
		var err error
		v, err = f()
		return err
	})
	if err != nil {
		t.Fatalf("after %v: still waiting for %s: %v", timeout, what, err)
	}
	return v
}

// Check is Value for a check without a value: it calls f at once, then
// every Interval, until f returns nil. When timeout passes first it fails t
// with what and f's last error (t.Fatalf).
func Check(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	if _, err := wait(timeout, f); err != nil {
		t.Fatalf("after %v: still waiting for %s: %v", timeout, what, err)
	}
}

// Signal waits until ch gives a value or is closed, and returns that value
// (the zero value when ch is closed). When timeout passes first it fails t
// with what (t.Fatalf).
func Signal[T any](t testing.TB, timeout time.Duration, what string, ch <-chan T) T {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("after %v: still waiting for %s", timeout, what)
		var zero T
		return zero
	}
}

// Wait is Value without a test: it calls f at once, then every Interval,
// until f returns nil, and returns nil. When timeout passes first it
// returns an error naming what and wrapping f's last error.
func Wait(timeout time.Duration, what string, f func() error) error {
	_, err := wait(timeout, f)
	if err != nil {
		return fmt.Errorf("after %v: still waiting for %s: %w", timeout, what, err)
	}
	return nil
}

// errNotYet is Until's condition, false.
var errNotYet = errors.New("not yet")

// wait calls f until it returns nil or timeout passes, and returns how
// long it waited and f's last error.
func wait(timeout time.Duration, f func() error) (time.Duration, error) {
	start := time.Now()
	for {
		err := f()
		if err == nil {
			return time.Since(start), nil
		}
		if time.Since(start) >= timeout {
			return time.Since(start), err
		}
		time.Sleep(min(Interval, max(0, timeout-time.Since(start))))
	}
}
