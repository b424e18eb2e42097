// Package redistest gives tests a real, empty Redis.
//
// [New] returns a Redis database that belongs to one test. When
// TEST_REDIS_URL is set (for example redis://127.0.0.1:6379), the test
// claims a free database number 1–15 on that server, flushes it, and frees
// it at the end; claims are held in database 0 under "stripeq:test:claim:N",
// so concurrently running test packages never share a database. Otherwise a
// throwaway redis-server is started on a free loopback port for the test
// and stopped after it; the redis-server binary must then be on PATH.
//
// [Start] always starts a dedicated redis-server, for tests that stop,
// kill, restart or persist it.
//
// Test support internal to this module, with no compatibility promise;
// the supported test kit for your own handlers is pkg/stripeq/stripeqtest.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/redisconn"
)

// DB is a Redis database that belongs to one test.
type DB struct {
	// URL is a redis:// URL of the database, as REDIS_URL would hold it.
	URL string
	// Opt is URL parsed for asynq.
	Opt asynq.RedisConnOpt
	// Client is connected to the database and closed at the end of the test.
	Client redis.UniversalClient
}

// New returns an empty Redis database for t. See the package comment.
func New(t testing.TB) *DB {
	t.Helper()
	base := os.Getenv("TEST_REDIS_URL")
	if base == "" {
		srv := Start(t)
		return open(t, srv.URL(0))
	}
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "redis" {
		t.Fatalf("redistest: TEST_REDIS_URL must be a redis:// URL")
	}
	claimURL := *u
	claimURL.Path = "/0"
	claimOpt, err := redisconn.Parse(claimURL.String())
	if err != nil {
		t.Fatalf("redistest: TEST_REDIS_URL: %v", err)
	}
	claims := redisconn.NewClient(claimOpt)
	t.Cleanup(func() { claims.Close() })

	token := randomToken()
	ctx := context.Background()
	return poll.Value(t, 2*time.Minute, "redistest: a free database on TEST_REDIS_URL", func() (*DB, error) {
		for n := 1; n <= 15; n++ {
			key := keyspace.TestClaim(n)
			ok, err := claims.SetNX(ctx, key, token, 15*time.Minute).Result()
			if err != nil {
				t.Fatalf("redistest: TEST_REDIS_URL does not answer: %v", err)
			}
			if !ok {
				continue
			}
			t.Cleanup(func() {
				// Free the claim only if it is still ours.
				release := redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)
				release.Run(context.Background(), claims, []string{key}, token)
			})
			dbURL := *u
			dbURL.Path = "/" + strconv.Itoa(n)
			db := open(t, dbURL.String())
			if err := db.Client.FlushDB(ctx).Err(); err != nil {
				t.Fatalf("redistest: flush database %d: %v", n, err)
			}
			return db, nil
		}
		return nil, errors.New("databases 1-15 are claimed by other tests")
	})
}

func open(t testing.TB, rawURL string) *DB {
	t.Helper()
	opt, err := redisconn.Parse(rawURL)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	c := redisconn.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redistest: ping %s: %v", redisconn.Redacted(rawURL), err)
	}
	return &DB{URL: rawURL, Opt: opt, Client: c}
}

func randomToken() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Server is a redis-server process started by a test, or by a harness
// such as deploy/bench.
type Server struct {
	t    testing.TB // nil when started by StartServer
	Addr string     // host:port on loopback
	Dir  string     // its working directory (AOF and RDB files live here)
	args []string   // extra arguments, kept for Restart

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start starts a redis-server on a free loopback port with no persistence,
// plus any extra arguments (for example "--appendonly", "yes"). When the
// first argument is not an option but a configuration file (such as
// deploy/redis.conf), the server reads it first and the file decides
// persistence; port, bind address, directory and log file are still the
// test's. It is killed at the end of the test.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redistest: no redis-server on PATH and TEST_REDIS_URL is unset; install Redis (apt-get install redis-server) or set TEST_REDIS_URL")
	}
	s, err := StartServer(t.TempDir(), args...)
	if err != nil {
		t.Fatal(err)
	}
	s.t = t
	t.Cleanup(s.Kill)
	return s
}

// StartServer is [Start] without a test, for a harness such as
// deploy/bench: the server works in dir, and the caller must Kill it.
//
// redis-server cannot be handed a listener, so it is given a port that was
// free a moment ago; when another process took it in between, the server
// cannot bind and exits, and StartServer tries again on another port (at
// most 5 times). The server is taken as up only once the Redis that
// answers on its port reports its process ID, so a clash can never pass
// for a start.
func StartServer(dir string, args ...string) (*Server, error) {
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir, args: args}
		err = s.start()
		if errors.Is(err, errPortTaken) && attempt < 5 {
			continue
		}
		return s, err
	}
}

// errPortTaken is start's error when another process holds the port.
var errPortTaken = errors.New("redistest: the port was taken")

// URL returns the redis:// URL of database db on s.
func (s *Server) URL(db int) string { return fmt.Sprintf("redis://%s/%d", s.Addr, db) }

func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	var args []string
	extra := s.args
	if len(extra) > 0 && !strings.HasPrefix(extra[0], "-") {
		args, extra = []string{extra[0]}, extra[1:] // a configuration file
	} else {
		args = []string{"--save", "", "--appendonly", "no"}
	}
	args = append(args, "--port", port, "--bind", "127.0.0.1", "--dir", s.Dir,
		"--daemonize", "no", "--logfile", filepath.Join(s.Dir, "redis.log"))
	args = append(args, extra...)
	cmd := exec.Command("redis-server", args...)
	// Kill the server if the test binary dies before its cleanup runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start redis-server: %w", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	logFile := filepath.Join(s.Dir, "redis.log")
	taken := false
	err := poll.Wait(10*time.Second, "redis-server on "+s.Addr, func() error {
		pid, err := serverPID(s.Addr)
		if err == nil && pid != 0 && pid != cmd.Process.Pid {
			taken = true // another process's Redis answers there
			return nil
		}
		if log, _ := os.ReadFile(logFile); bytes.Contains(log, []byte("Address already in use")) {
			taken = true
			return nil
		}
		return err
	})
	if err == nil && !taken {
		return nil
	}
	s.Kill()
	if taken {
		return fmt.Errorf("%w: %s", errPortTaken, s.Addr)
	}
	log, _ := os.ReadFile(logFile)
	return fmt.Errorf("redistest: %w; its log:\n%s", err, log)
}

// Pid returns the server's process ID, or 0 when it is not running.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	cmd.Wait()
}

// Signal sends sig to the server: SIGSTOP makes it hang as an overloaded
// or partitioned Redis would, SIGCONT resumes it.
func (s *Server) Signal(sig os.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return errors.New("redistest: server not running")
	}
	return s.cmd.Process.Signal(sig)
}

// Restart starts the server again on the same port and directory, after
// Kill. With persistence enabled it reloads its data. It fails the test
// that started s when the server does not come back.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

// serverPID asks the Redis at addr for its process ID (INFO server) over
// a raw connection, so that it works before any client is configured. A
// server with a password answers NOAUTH: it is up all the same, and its
// process ID is unknown (0).
func serverPID(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("INFO server\r\n")); err != nil {
		return 0, err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	switch {
	case err != nil:
		return 0, err
	case strings.HasPrefix(line, "-NOAUTH"):
		return 0, nil
	case !strings.HasPrefix(line, "$"):
		return 0, errors.New(strings.TrimSpace(line))
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
}

// freePort returns a loopback port that was free a moment ago, for a
// redis-server, which cannot be handed a listener; StartServer retries
// when it is taken by then.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
