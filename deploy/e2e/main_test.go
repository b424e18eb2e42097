package e2e

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

// TestMain skips the whole suite under go test -short, the inner loop
// (go tool task test:short): every test here builds and runs the real
// binaries, which takes minutes. go tool task test runs it.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("deploy/e2e: skipped under -short; go tool task test runs it")
		os.Exit(0)
	}
	os.Exit(m.Run())
}
