// Package redisconn turns the REDIS_URL setting into a Redis connection for
// asynq, asynqmon and go-redis, so that the three commands read it the same
// way.
//
// Accepted forms:
//
//	redis://[:password@]host:port[/db]          a single server
//	rediss://[:password@]host:port[/db]         the same over TLS
//	redis-socket://[:password@]/path/to/socket[?db=N]
//	redis-sentinel://[:password@]host:port[,host:port…][/db]?master=NAME
//	redis-cluster://[:password@]host:port[,host:port…]
//
// Internal to this module, with no compatibility promise: a program
// outside it should not import it (pkg/README.md lists the packages).
package redisconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/envconfig"
)

// DefaultURL is the REDIS_URL used when the variable is unset.
const DefaultURL = "redis://127.0.0.1:6379/0"

// Timeouts applied to every connection. They bound how long a request can
// wait on an unreachable Redis.
const (
	DialTimeout  = 2 * time.Second
	ReadTimeout  = 3 * time.Second
	WriteTimeout = 3 * time.Second
)

// ErrInvalidURL is wrapped by every error Parse returns.
var ErrInvalidURL = errors.New("invalid Redis URL")

// Parse reads a Redis URL in one of the forms of the package comment. The
// errors it returns wrap ErrInvalidURL and never contain the password.
func Parse(raw string) (asynq.RedisConnOpt, error) {
	u, err := parseURL(raw)
	if err != nil {
		return nil, err
	}
	password, _ := u.User.Password()
	username := u.User.Username()
	switch u.Scheme {
	case "redis", "rediss":
		if u.Host == "" {
			return nil, fmt.Errorf("%w: no host", ErrInvalidURL)
		}
		if strings.Contains(u.Host, ",") {
			return nil, fmt.Errorf("%w: several hosts need redis-sentinel:// or redis-cluster://", ErrInvalidURL)
		}
		db, err := pathDB(u.Path)
		if err != nil {
			return nil, err
		}
		opt := asynq.RedisClientOpt{
			Network: "tcp", Addr: withPort(u.Host), Username: username, Password: password, DB: db,
			DialTimeout: DialTimeout, ReadTimeout: ReadTimeout, WriteTimeout: WriteTimeout,
		}
		if u.Scheme == "rediss" {
			opt.TLSConfig = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
		}
		return opt, nil
	case "redis-socket":
		if u.Path == "" {
			return nil, fmt.Errorf("%w: redis-socket:// needs a socket path", ErrInvalidURL)
		}
		db, err := queryDB(u.Query())
		if err != nil {
			return nil, err
		}
		return asynq.RedisClientOpt{
			Network: "unix", Addr: u.Path, Username: username, Password: password, DB: db,
			DialTimeout: DialTimeout, ReadTimeout: ReadTimeout, WriteTimeout: WriteTimeout,
		}, nil
	case "redis-sentinel":
		addrs, err := hosts(u.Host)
		if err != nil {
			return nil, err
		}
		master := u.Query().Get("master")
		if master == "" {
			return nil, fmt.Errorf("%w: redis-sentinel:// needs ?master=NAME", ErrInvalidURL)
		}
		db, err := pathDB(u.Path)
		if err != nil {
			return nil, err
		}
		return asynq.RedisFailoverClientOpt{
			MasterName: master, SentinelAddrs: addrs, SentinelPassword: u.Query().Get("sentinel_password"),
			Username: username, Password: password, DB: db,
			DialTimeout: DialTimeout, ReadTimeout: ReadTimeout, WriteTimeout: WriteTimeout,
		}, nil
	case "redis-cluster":
		addrs, err := hosts(u.Host)
		if err != nil {
			return nil, err
		}
		if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
			return nil, fmt.Errorf("%w: Redis Cluster has only database 0", ErrInvalidURL)
		}
		return asynq.RedisClusterClientOpt{
			Addrs: addrs, Username: username, Password: password,
			DialTimeout: DialTimeout, ReadTimeout: ReadTimeout, WriteTimeout: WriteTimeout,
		}, nil
	case "":
		return nil, fmt.Errorf("%w: no scheme; use redis://host:port", ErrInvalidURL)
	default:
		return nil, fmt.Errorf("%w: unsupported scheme %q", ErrInvalidURL, u.Scheme)
	}
}

// Variable is the setting this package reads: REDIS_URL.
const Variable = "REDIS_URL"

// ParseSetting parses raw, the value of REDIS_URL, as Parse does, and is
// the one place that judges it: an invalid URL is recorded on env as a
// failure, and a password that would cross the network in the clear is
// recorded as a warning (see ClearTextHost). Every command that reads
// REDIS_URL calls it. It returns nil when raw is invalid.
func ParseSetting(env *envconfig.Reader, raw string) asynq.RedisConnOpt {
	opt, err := Parse(raw)
	if err != nil {
		env.Fail(Variable, err.Error())
		return nil
	}
	if host, ok := ClearTextHost(raw); ok {
		env.Warn(Variable, fmt.Sprintf("sends its password in the clear to %s, which is not loopback: anyone on the network between can read it and every event; use rediss:// (TLS) or keep Redis on a network only stripeq reaches", host))
	}
	return opt
}

// ClearTextHost reports whether raw, a valid Redis URL, carries a password
// (in its user-info, or sentinel_password) that is sent without TLS to a
// host that is not loopback, and names the first such host. rediss:// is
// TLS; redis-socket:// never leaves the machine; redis://,
// redis-sentinel:// and redis-cluster:// are plain TCP.
func ClearTextHost(raw string) (string, bool) {
	u, err := parseURL(raw)
	if err != nil {
		return "", false
	}
	_, hasPassword := u.User.Password()
	hasPassword = hasPassword || u.Query().Get("sentinel_password") != ""
	switch u.Scheme {
	case "redis", "redis-sentinel", "redis-cluster":
	default:
		return "", false
	}
	if !hasPassword {
		return "", false
	}
	for _, h := range strings.Split(u.Host, ",") {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		host := h
		if name, _, err := net.SplitHostPort(h); err == nil {
			host = name
		}
		if !isLoopback(strings.Trim(host, "[]")) {
			return h, true
		}
	}
	return "", false
}

// isLoopback reports whether host, a name or an IP address, is
// "localhost" or a loopback address.
func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// NewClient returns a go-redis client for opt, as asynq would make it, but
// one whose commands also end at their context's deadline. go-redis
// otherwise ignores deadlines once a command is sent and waits out
// ReadTimeout, so a hung Redis (one that accepts connections but does not
// answer) held the api's 3 s enqueue for up to 4.6 s and its 1 s /readyz
// PING for 3 s.
func NewClient(opt asynq.RedisConnOpt) redis.UniversalClient {
	c := opt.MakeRedisClient().(redis.UniversalClient)
	// The options are read per command and per new node, so setting this
	// before the first command holds for every connection.
	switch c := c.(type) {
	case *redis.Client:
		c.Options().ContextTimeoutEnabled = true
	case *redis.ClusterClient:
		c.Options().ContextTimeoutEnabled = true
	}
	return c
}

// SetLogger sends go-redis's own log lines (such as failed dials) to log at
// warning level. It is process-wide, as go-redis's logger is.
func SetLogger(log *slog.Logger) { redis.SetLogger(slogAdapter{log}) }

type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Printf(ctx context.Context, format string, v ...any) {
	a.log.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// Redacted returns raw for logs, with every value that may carry a secret
// replaced by "xxxxx": the password of the user-info, the value of every
// query parameter but the known harmless ones (master, db), so
// sentinel_password and any parameter added later, a query parameter
// without a value, and the fragment. An unparsable raw gives
// "(unparsable URL)", never raw itself.
func Redacted(raw string) string {
	if raw == "" {
		raw = DefaultURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), redactedMark)
	}
	if u.RawQuery != "" || u.ForceQuery {
		params := strings.Split(u.RawQuery, "&")
		for i, p := range params {
			name, _, hasValue := strings.Cut(p, "=")
			switch key, err := url.QueryUnescape(name); {
			case err == nil && hasValue && harmlessParams[key]:
			case hasValue:
				params[i] = name + "=" + redactedMark
			case p != "":
				params[i] = redactedMark
			}
		}
		u.RawQuery = strings.Join(params, "&")
	}
	if u.Fragment != "" || u.RawFragment != "" {
		u.Fragment, u.RawFragment = redactedMark, ""
	}
	return u.String()
}

// redactedMark replaces a secret in Redacted's output.
const redactedMark = "xxxxx"

// harmlessParams are the query parameters whose values Redacted keeps.
var harmlessParams = map[string]bool{"master": true, "db": true}

// parseURL parses raw (DefaultURL when empty) as a URL whose Host may be
// a comma-separated list of hosts. Its error never quotes raw.
func parseURL(raw string) (*url.URL, error) {
	if raw == "" {
		raw = DefaultURL
	}
	// A host list ("h1:1,h2:2") is not a valid URL host; parse the URL
	// with a placeholder host and keep the list aside.
	raw, hostList := cutHosts(raw)
	u, err := url.Parse(raw)
	if err != nil {
		// url's own error quotes the whole URL, password included.
		return nil, fmt.Errorf("%w: cannot parse it as a URL", ErrInvalidURL)
	}
	if hostList != "" {
		u.Host = hostList
	}
	return u, nil
}

// cutHosts replaces the host part of raw by a placeholder when it lists
// several hosts, and returns that list.
func cutHosts(raw string) (string, string) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw, ""
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority := rest[:end]
	userinfo, hostList := "", authority
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		userinfo, hostList = authority[:at+1], authority[at+1:]
	}
	if !strings.Contains(hostList, ",") {
		return raw, ""
	}
	return scheme + "://" + userinfo + "hosts.invalid" + rest[end:], hostList
}

func pathDB(path string) (int, error) {
	p := strings.Trim(path, "/")
	if p == "" {
		return 0, nil
	}
	return atoiDB(p)
}

func queryDB(q url.Values) (int, error) {
	if v := q.Get("db"); v != "" {
		return atoiDB(v)
	}
	return 0, nil
}

func atoiDB(s string) (int, error) {
	db, err := strconv.Atoi(s)
	if err != nil || db < 0 {
		return 0, fmt.Errorf("%w: database %q is not a number ≥ 0", ErrInvalidURL, s)
	}
	return db, nil
}

func hosts(list string) ([]string, error) {
	var addrs []string
	for _, h := range strings.Split(list, ",") {
		if h = strings.TrimSpace(h); h != "" {
			addrs = append(addrs, withPort(h))
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	return addrs, nil
}

// withPort adds Redis's default port when host has none.
func withPort(host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), "6379")
}
