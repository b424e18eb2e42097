package poll_test

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/poll"
)

// recorder is a testing.TB whose Fatalf records the message and ends the
// goroutine, as testing's does.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls f with a recorder on its own goroutine, as a test would run, and
// returns what it failed with ("" when it did not).
func run(f func(t testing.TB)) string {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.failed
}

// after returns a condition that holds from its nth call on, and counts
// the calls in calls.
func after(n int32, calls *atomic.Int32) func() bool {
	return func() bool { return calls.Add(1) >= n }
}

func TestUntil(t *testing.T) {
	for _, tc := range []struct {
		name      string
		holdsFrom int32 // the call from which the condition holds; 0: never
		timeout   time.Duration
		wantFail  string
		wantCalls int32
	}{
		{name: "at once", holdsFrom: 1, timeout: time.Second, wantCalls: 1},
		{name: "after a few calls", holdsFrom: 4, timeout: 5 * time.Second, wantCalls: 4},
		{name: "never", timeout: 100 * time.Millisecond, wantFail: "after 100ms: still waiting for the answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			cond := after(tc.holdsFrom, &calls)
			if tc.holdsFrom == 0 {
				cond = func() bool { calls.Add(1); return false }
			}
			start := time.Now()
			var took time.Duration
			failed := run(func(t testing.TB) { took = poll.Until(t, tc.timeout, "the answer", cond) })
			if failed != tc.wantFail {
				t.Fatalf("failed with %q, want %q", failed, tc.wantFail)
			}
			if tc.wantFail != "" {
				if elapsed := time.Since(start); elapsed < tc.timeout {
					t.Errorf("gave up after %v, before its timeout %v", elapsed, tc.timeout)
				}
				if calls.Load() < 2 {
					t.Errorf("called the condition %d times in %v", calls.Load(), tc.timeout)
				}
				return
			}
			if calls.Load() != tc.wantCalls {
				t.Errorf("called the condition %d times, want %d", calls.Load(), tc.wantCalls)
			}
			if least := time.Duration(tc.wantCalls-1) * poll.Interval; took < least {
				t.Errorf("returned %v, less than %d intervals", took, tc.wantCalls-1)
			}
		})
	}
}

// flaky returns a function that fails with err until its okFrom-th call
// (never when okFrom is 0), and counts its calls in calls.
func flaky(okFrom int, err error, calls *int) func() error {
	return func() error {
		*calls++
		if okFrom == 0 || *calls < okFrom {
			return err
		}
		return nil
	}
}

// TestValueCheckWait runs the three waits on a function that errs: Value
// and Check fail the test with the last error, Wait returns it.
func TestValueCheckWait(t *testing.T) {
	errGone := errors.New("the record is not there")
	waits := map[string]func(t testing.TB, timeout time.Duration, f func() error) (got string, err error){
		"Value": func(t testing.TB, timeout time.Duration, f func() error) (string, error) {
			return poll.Value(t, timeout, "the record", func() (string, error) { return "the value", f() }), nil
		},
		"Check": func(t testing.TB, timeout time.Duration, f func() error) (string, error) {
			poll.Check(t, timeout, "the record", f)
			return "the value", nil
		},
		"Wait": func(_ testing.TB, timeout time.Duration, f func() error) (string, error) {
			err := poll.Wait(timeout, "the record", f)
			if err != nil {
				return "", err
			}
			return "the value", nil
		},
	}
	for _, tc := range []struct {
		name    string
		okFrom  int // the call from which f succeeds; 0: never
		timeout time.Duration
		want    string // the failure or the error; "" when it succeeds
	}{
		{name: "at once", okFrom: 1, timeout: 5 * time.Second},
		{name: "after errors", okFrom: 3, timeout: 5 * time.Second},
		{name: "never", timeout: 80 * time.Millisecond, want: "after 80ms: still waiting for the record: the record is not there"},
	} {
		for name, wait := range waits {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				calls := 0
				var got string
				var err error
				failed := run(func(t testing.TB) { got, err = wait(t, tc.timeout, flaky(tc.okFrom, errGone, &calls)) })
				if err != nil {
					failed = err.Error()
					if !errors.Is(err, errGone) {
						t.Errorf("Wait's error %v does not wrap the last one", err)
					}
				}
				if failed != tc.want {
					t.Fatalf("failed with %q, want %q", failed, tc.want)
				}
				if tc.want == "" && (got != "the value" || calls != tc.okFrom) {
					t.Errorf("got %q after %d calls, want the value after %d", got, calls, tc.okFrom)
				}
			})
		}
	}
}

func TestSignal(t *testing.T) {
	for _, tc := range []struct {
		name     string
		send     func(ch chan int)
		timeout  time.Duration
		want     int
		wantFail string
	}{
		{name: "a value", send: func(ch chan int) { ch <- 7 }, timeout: 5 * time.Second, want: 7},
		{name: "closed", send: func(ch chan int) { close(ch) }, timeout: 5 * time.Second, want: 0},
		{name: "later", send: func(ch chan int) { time.Sleep(30 * time.Millisecond); ch <- 3 }, timeout: 5 * time.Second, want: 3},
		{name: "nothing", send: func(chan int) {}, timeout: 50 * time.Millisecond, wantFail: "after 50ms: still waiting for the exit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := make(chan int, 1)
			go tc.send(ch)
			var got int
			failed := run(func(t testing.TB) { got = poll.Signal(t, tc.timeout, "the exit", ch) })
			if failed != tc.wantFail || got != tc.want {
				t.Fatalf("got %d, failed with %q; want %d, failure %q", got, failed, tc.want, tc.wantFail)
			}
		})
	}
}

func ExampleWait() {
	ready := time.Now().Add(50 * time.Millisecond)
	err := poll.Wait(5*time.Second, "the server", func() error {
		if time.Now().Before(ready) {
			return errors.New("not listening yet")
		}
		return nil
	})
	fmt.Println(err)
	err = poll.Wait(50*time.Millisecond, "the server", func() error { return errors.New("connection refused") })
	fmt.Println(err)
	// Output:
	// <nil>
	// after 50ms: still waiting for the server: connection refused
}
