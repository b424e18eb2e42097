package stack

import "testing"

// deep calls itself n times with a frame of about 512 bytes, as a
// handler's decoding and Redis calls go about 20 KB deep.
//
//go:noinline
func deep(n int) byte {
	var b [512]byte
	if n == 0 {
		return b[n]
	}
	return deep(n-1) + b[n%len(b)]
}

// BenchmarkNewGoroutine: a new goroutine that goes 20 KB deep, with and
// without Grow at its start.
func BenchmarkNewGoroutine(b *testing.B) {
	for _, tt := range []struct {
		name string
		grow bool
	}{{"doubling", false}, {"Grow", true}} {
		b.Run(tt.name, func(b *testing.B) {
			done := make(chan byte)
			for b.Loop() {
				go func() {
					if tt.grow {
						Grow()
					}
					done <- deep(40)
				}()
				<-done
			}
		})
	}
}

// TestGrow: Grow returns, and the goroutine goes deeper than Size.
func TestGrow(t *testing.T) {
	done := make(chan byte)
	go func() {
		Grow()
		done <- deep(3 * Size / 512)
	}()
	if b := <-done; b != 0 {
		t.Errorf("deep = %d, want 0", b)
	}
}
