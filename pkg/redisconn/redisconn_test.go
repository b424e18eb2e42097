package redisconn_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/redisconn"
)

func TestParse(t *testing.T) {
	tests := []struct {
		url  string
		want asynq.RedisConnOpt // nil: an error is expected
	}{
		{"", asynq.RedisClientOpt{Network: "tcp", Addr: "127.0.0.1:6379"}},
		{"redis://:s3cret@db.internal:6380/2", asynq.RedisClientOpt{Network: "tcp", Addr: "db.internal:6380", Password: "s3cret", DB: 2}},
		{"redis://user:pw@h", asynq.RedisClientOpt{Network: "tcp", Addr: "h:6379", Username: "user", Password: "pw"}},
		{"redis-socket:///run/redis.sock?db=3", asynq.RedisClientOpt{Network: "unix", Addr: "/run/redis.sock", DB: 3}},
		{"redis-sentinel://:pw@s1:26379,s2:26379?master=mymaster", asynq.RedisFailoverClientOpt{MasterName: "mymaster", SentinelAddrs: []string{"s1:26379", "s2:26379"}, Password: "pw"}},
		{"redis-cluster://n1:7000,n2:7001,n3", asynq.RedisClusterClientOpt{Addrs: []string{"n1:7000", "n2:7001", "n3:6379"}}},
		{"http://h:6379", nil},
		{"localhost:6379", nil},
		{"redis://h/notanumber", nil},
		{"redis://h1,h2", nil},
		{"redis-sentinel://s1:26379", nil},
		{"redis-cluster://n1:7000/1", nil},
		{"redis-socket://", nil},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := redisconn.Parse(tt.url)
			if tt.want == nil {
				if !errors.Is(err, redisconn.ErrInvalidURL) {
					t.Fatalf("Parse = %v, %v; want ErrInvalidURL", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(withoutTimeouts(got), tt.want) {
				t.Errorf("Parse = %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestParseTLS(t *testing.T) {
	opt, err := redisconn.Parse("rediss://cache.example.com:6380")
	if err != nil {
		t.Fatal(err)
	}
	c := opt.(asynq.RedisClientOpt)
	if c.TLSConfig == nil || c.TLSConfig.ServerName != "cache.example.com" {
		t.Errorf("TLS config = %+v, want ServerName cache.example.com", c.TLSConfig)
	}
}

func TestErrorsNeverQuoteThePassword(t *testing.T) {
	for _, u := range []string{"redis://:hunter2@h/x", "redis-sentinel://:hunter2@h", "redis://:hunter2@h\x7f"} {
		if _, err := redisconn.Parse(u); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Parse(%q) = %v", u, err)
		}
	}
	if r := redisconn.Redacted("redis://:hunter2@h:1/0"); strings.Contains(r, "hunter2") {
		t.Errorf("Redacted = %q", r)
	}
}

// withoutTimeouts clears the timeouts every option gets, so the table can
// compare the rest.
func withoutTimeouts(o asynq.RedisConnOpt) asynq.RedisConnOpt {
	switch v := o.(type) {
	case asynq.RedisClientOpt:
		v.DialTimeout, v.ReadTimeout, v.WriteTimeout = 0, 0, 0
		return v
	case asynq.RedisFailoverClientOpt:
		v.DialTimeout, v.ReadTimeout, v.WriteTimeout = 0, 0, 0
		return v
	case asynq.RedisClusterClientOpt:
		v.DialTimeout, v.ReadTimeout, v.WriteTimeout = 0, 0, 0
		return v
	}
	return o
}

// TestRedacted checks that every password a Redis URL can carry, in its
// user-info or its query string, and any parameter Redacted does not know,
// is masked, and that what an operator needs to tell URLs apart is kept.
func TestRedacted(t *testing.T) {
	tests := []struct {
		name, url, want string
	}{
		{"unset", "", "redis://127.0.0.1:6379/0"},
		{"no password", "redis://db.internal:6380/2", "redis://db.internal:6380/2"},
		{"password", "redis://:hunter2@db.internal:6380/2", "redis://:xxxxx@db.internal:6380/2"},
		{"user and password", "rediss://app:hunter2@h:6380", "rediss://app:xxxxx@h:6380"},
		{"escaped password", "redis://:hun%40ter2@h", "redis://:xxxxx@h"},
		{"socket", "redis-socket://:hunter2@/run/redis.sock?db=3", "redis-socket://:xxxxx@/run/redis.sock?db=3"},
		{"sentinel_password", "redis-sentinel://:hunter2@s1:26379,s2:26379/1?master=mymaster&sentinel_password=hunter3",
			"redis-sentinel://:xxxxx@s1:26379,s2:26379/1?master=mymaster&sentinel_password=xxxxx"},
		{"sentinel_password first", "redis-sentinel://s1?sentinel_password=hunter3&master=m", "redis-sentinel://s1?sentinel_password=xxxxx&master=m"},
		{"escaped parameter name", "redis-sentinel://s1?master=m&sentinel%5Fpassword=hunter3", "redis-sentinel://s1?master=m&sentinel%5Fpassword=xxxxx"},
		{"parameter given twice", "redis-sentinel://s1?master=m&sentinel_password=hunter3&sentinel_password=hunter4",
			"redis-sentinel://s1?master=m&sentinel_password=xxxxx&sentinel_password=xxxxx"},
		{"unknown parameters", "redis://h?password=hunter2&token=hunter3", "redis://h?password=xxxxx&token=xxxxx"},
		{"parameter without a value", "redis://h?hunter2", "redis://h?xxxxx"},
		{"empty value", "redis://h?password=", "redis://h?password=xxxxx"},
		{"fragment", "redis://h#hunter2", "redis://h#xxxxx"},
		{"unparsable", "redis://:hunter2@h\x7f", "(unparsable URL)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := redisconn.Redacted(tt.url)
			if got != tt.want {
				t.Errorf("Redacted(%q) = %q, want %q", tt.url, got, tt.want)
			}
			if strings.Contains(got, "hunter") || strings.Contains(got, "hun%40ter") {
				t.Errorf("Redacted(%q) = %q: a secret is left", tt.url, got)
			}
		})
	}
}

// TestParseSettingWarnsOfAPasswordInTheClear: a password that would cross
// the network without TLS is warned about, naming REDIS_URL and the host,
// never the password; every other form is silent, and an invalid URL
// fails.
func TestParseSettingWarnsOfAPasswordInTheClear(t *testing.T) {
	tests := []struct {
		url, warnHost string // "" warns nothing
	}{
		{"", ""},
		{"redis://:pw-in-clear@10.255.255.1", "10.255.255.1"},
		{"redis://user:pw-in-clear@redis.internal:6380/2", "redis.internal:6380"},
		{"redis://:pw-in-clear@[2001:db8::1]:6379", "[2001:db8::1]:6379"},
		{"redis://:pw-in-clear@127.0.0.1:6379/0", ""},
		{"redis://:pw-in-clear@localhost", ""},
		{"redis://:pw-in-clear@[::1]:6379", ""},
		{"rediss://:pw-in-clear@redis.internal:6380/0", ""},
		{"redis://redis.internal:6379/0", ""},
		{"redis://user@redis.internal:6379/0", ""},
		{"redis-socket://:pw-in-clear@/run/redis.sock?db=1", ""},
		{"redis-sentinel://:pw-in-clear@127.0.0.1:26379,s2.internal:26379?master=m", "s2.internal:26379"},
		{"redis-sentinel://s1.internal:26379?master=m&sentinel_password=pw-in-clear", "s1.internal:26379"},
		{"redis-sentinel://127.0.0.1:26379?master=m&sentinel_password=pw-in-clear", ""},
		{"redis-cluster://:pw-in-clear@n1.internal:7000,n2.internal:7001", "n1.internal:7000"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			env := envconfig.New(func(string) string { return "" })
			if opt := redisconn.ParseSetting(env, tt.url); opt == nil || env.Err() != nil {
				t.Fatalf("refused: %v", env.Err())
			}
			warned := strings.Join(env.Warnings(), "\n")
			if strings.Contains(warned, "pw-in-clear") {
				t.Errorf("the warning quotes the password: %s", warned)
			}
			switch {
			case tt.warnHost == "" && warned != "":
				t.Errorf("warnings %q, want none", warned)
			case tt.warnHost != "" && (!strings.HasPrefix(warned, "REDIS_URL ") || !strings.Contains(warned, " "+tt.warnHost+",")):
				t.Errorf("warnings %q, want one naming REDIS_URL and %s", warned, tt.warnHost)
			}
		})
	}
	env := envconfig.New(func(string) string { return "" })
	if redisconn.ParseSetting(env, "http://:pw-in-clear@redis.internal") != nil || env.Err() == nil || !strings.Contains(env.Err().Error(), "REDIS_URL") {
		t.Errorf("an invalid URL: %v, want a failure naming REDIS_URL", env.Err())
	}
}
