package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/poll"
)

// Cluster is a Redis Cluster of redis-server processes started by a test.
type Cluster struct {
	Nodes []*Server
	// URL is its REDIS_URL: redis-cluster://addr1,addr2,…
	URL string
	// Client is a cluster client, closed at the end of the test.
	Client *redis.ClusterClient
}

// StartCluster starts masters redis-servers on free loopback ports, joins
// them into a Cluster with no replicas (redis-cli --cluster create), and
// waits until every slot is served. The servers are killed at the end of
// the test.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	c := &Cluster{}
	var addrs []string
	for range masters {
		n := Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000")
		c.Nodes = append(c.Nodes, n)
		addrs = append(addrs, n.Addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.URL = "redis-cluster://" + strings.Join(addrs, ",")
	c.Client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { c.Client.Close() })

	ctx := context.Background()
	poll.Check(t, 30*time.Second, "redistest: the cluster "+c.URL+" to be ok", func() error {
		for _, n := range c.Nodes {
			node := redis.NewClient(&redis.Options{Addr: n.Addr})
			info, err := node.ClusterInfo(ctx).Result()
			node.Close()
			if err == nil && !strings.Contains(info, "cluster_state:ok") {
				err = fmt.Errorf("%s is not cluster_state:ok", n.Addr)
			}
			if err != nil {
				return err
			}
		}
		return c.Client.Ping(ctx).Err()
	})
	return c
}
