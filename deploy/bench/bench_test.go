package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve the baselines, as the command does:
// the harness starts them by running its own executable.
func TestMain(m *testing.M) {
	if child := os.Getenv(childEnv); child != "" {
		if err := runChild(child, os.Getenv); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSmoke runs the harness in -smoke mode, so that it cannot rot: every
// target must run, pass its own loss checks and print its result line. The
// figures themselves are not checked; they are meaningless at this size.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and runs them")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out strings.Builder
	start := time.Now()
	if err := run(ctx, []string{"-smoke"}, os.Getenv, &out); err != nil {
		t.Fatalf("bench -smoke: %v\n%s", err, out.String())
	}
	t.Logf("bench -smoke took %v:\n%s", time.Since(start).Round(time.Millisecond), out.String())
	lines := strings.Split(out.String(), "\n")
	for _, target := range []string{
		"ingest", "ingest p99", "api CPU", "redis CPU", "e2e-capacity", "worker CPU", "forward", "memory", "console", "console/1", "redis e2e", // issues 20's and 29's
		"ingest/plain", "e2e-rate", "e2e-latency", "memory/zstd", "marker", "memory/ev/s", "index", // report only
	} {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, target+" ")
		}
		if !found {
			t.Errorf("no result line for %s", target)
		}
	}
}

func TestParseCommandStats(t *testing.T) {
	info := "# Commandstats\r\ncmdstat_evalsha:calls=10,usec=52,usec_per_call=5.20,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_zadd:calls=40,usec=80,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\ncmdstat_ping:calls=1,usec=0,usec_per_call=0.00\r\n"
	got := parseCommandStats(info)
	want := []cmdStat{{"zadd", 40, 80}, {"evalsha", 10, 52}, {"ping", 1, 0}}
	if !slices.Equal(got, want) {
		t.Fatalf("parseCommandStats = %v, want %v", got, want)
	}
	if line, want := commandProfile(got, 10, 2), "redis execution per event: zadd 4.00×, 8.0 µs; evalsha 1.00×, 5.2 µs"; line != want {
		t.Errorf("commandProfile = %q, want %q", line, want)
	}
}
