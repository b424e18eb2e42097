package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/poll"
)

// SentinelMaster is the master name the sentinels of StartSentinel watch.
const SentinelMaster = "mymaster"

// Sentinel is a master, its replica and three sentinels started by a test.
type Sentinel struct {
	Master, Replica *Server
	Sentinels       []string // sentinel addresses
	// URL is its REDIS_URL: redis-sentinel://s1,s2,s3?master=mymaster
	URL string
}

// StartSentinel starts a master, one replica of it, and three sentinels
// that fail over after the master has been unreachable for 2.5 s (a
// shorter time makes a loaded machine fail over on a slow reply). Every
// process is killed at the end of the test.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	s := &Sentinel{Master: Start(t)}
	host, port, _ := net.SplitHostPort(s.Master.Addr)
	s.Replica = Start(t, "--replicaof", host, port)
	waitReplicas(t, s.Master.Addr, 1)
	for range 3 {
		// A sentinel is a redis-server in sentinel mode: started as one
		// (Start), on its own port, with its configuration file first.
		conf := filepath.Join(t.TempDir(), "sentinel.conf")
		os.WriteFile(conf, []byte(fmt.Sprintf(`sentinel monitor %s %s %s 2
sentinel down-after-milliseconds %s 2500
sentinel failover-timeout %s 5000
sentinel parallel-syncs %s 1
`, SentinelMaster, host, port, SentinelMaster, SentinelMaster, SentinelMaster)), 0o644)
		s.Sentinels = append(s.Sentinels, Start(t, conf, "--sentinel").Addr)
	}
	s.URL = "redis-sentinel://" + strings.Join(s.Sentinels, ",") + "?master=" + SentinelMaster

	// Wait until every sentinel knows the master and its replica.
	start := time.Now()
	for _, addr := range s.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: addr})
		poll.Check(t, 20*time.Second-time.Since(start), "redistest: sentinel "+addr+" to see the replica", func() error {
			replicas, err := sc.Replicas(context.Background(), SentinelMaster).Result()
			if err == nil && len(replicas) != 1 {
				err = fmt.Errorf("replicas %v", replicas)
			}
			return err
		})
		sc.Close()
	}
	return s
}

// waitReplicas waits until the server at addr has n connected replicas.
func waitReplicas(t testing.TB, addr string, n int) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	want := fmt.Sprintf("connected_slaves:%d", n)
	poll.Check(t, 20*time.Second, fmt.Sprintf("redistest: %d online replicas of %s", n, addr), func() error {
		info, err := c.Info(context.Background(), "replication").Result()
		if err == nil && !(strings.Contains(info, want) && (n == 0 || strings.Contains(info, "state=online"))) {
			err = fmt.Errorf("its replication:\n%s", info)
		}
		return err
	})
}

// CurrentMaster asks the first sentinel that answers for the master's
// address.
func (s *Sentinel) CurrentMaster(ctx context.Context) (string, error) {
	var lastErr error
	for _, addr := range s.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: addr})
		hp, err := sc.GetMasterAddrByName(ctx, SentinelMaster).Result()
		sc.Close()
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1]), nil
		}
		lastErr = err
	}
	return "", lastErr
}

// RestartAsReplicaOf restarts a killed server as a replica of master, as a
// supervisor restarting a failed-over master with the topology Sentinel
// now reports would.
func (s *Server) RestartAsReplicaOf(master string) {
	s.t.Helper()
	host, port, _ := net.SplitHostPort(master)
	s.args = append(s.args, "--replicaof", host, port)
	s.Restart()
}
