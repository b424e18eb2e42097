package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// cmdStat is one Redis command's share of a run: from INFO commandstats.
type cmdStat struct {
	name  string
	calls int64
	usec  int64 // time Redis spent executing it (not reading or writing sockets)
}

// resetCommandStats zeroes Redis's per-command counters (CONFIG RESETSTAT),
// so that commandStats after a run reads that run's alone.
func (r *redisServer) resetCommandStats(ctx context.Context) error {
	return r.rdb.ConfigResetStat(ctx).Err()
}

// commandStats reads INFO commandstats: every command called since the
// last resetCommandStats, most time first.
func (r *redisServer) commandStats(ctx context.Context) ([]cmdStat, error) {
	info, err := r.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	return parseCommandStats(info), nil
}

// parseCommandStats reads lines such as
// "cmdstat_evalsha:calls=10,usec=52,usec_per_call=5.20,…".
func parseCommandStats(info string) []cmdStat {
	var out []cmdStat
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, found := strings.CutPrefix(name, "cmdstat_")
		if !ok || !found {
			continue
		}
		s := cmdStat{name: name}
		for kv := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				s.calls, _ = strconv.ParseInt(v, 10, 64)
			case "usec":
				s.usec, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b cmdStat) int { return int(b.usec - a.usec) })
	return out
}

// commandProfile is the Redis work of n events in one line: the top
// commands by execution time, each with its calls and µs per event. A
// script's time (eval, evalsha) includes the commands it calls, which are
// also listed under their own names. What Redis's CPU per event spends
// beyond execution goes to the sockets' system calls, parsing and replies,
// which INFO does not split.
func commandProfile(stats []cmdStat, n, top int) string {
	if n <= 0 || len(stats) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("redis execution per event:")
	for _, s := range stats[:min(top, len(stats))] {
		fmt.Fprintf(&b, " %s %.2f×, %.1f µs;", s.name, float64(s.calls)/float64(n), float64(s.usec)/float64(n))
	}
	return strings.TrimSuffix(b.String(), ";")
}
