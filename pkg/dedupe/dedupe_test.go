package dedupe

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/redistest"
)

// seen and markNow look a marker up and write one, each in its own round
// trip, as the api does inside its shared pipelines.
func seen(t *testing.T, m *Marks, rdb redis.Cmdable, id string, created int64) bool {
	t.Helper()
	ok, err := m.Check(context.Background(), rdb, "stripe", id, created).Result()
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func markNow(t *testing.T, m *Marks, rdb redis.UniversalClient, id string, created int64) {
	t.Helper()
	ctx := context.Background()
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		m.Mark(ctx, p, "stripe", id, created)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestKey(t *testing.T) {
	tests := []struct {
		queue   string
		created time.Time
		want    string
	}{
		{"stripe", time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), "stripeq:seen:{stripe}:20261128"},
		{"stripe", time.Date(2026, 11, 28, 23, 59, 59, 0, time.UTC), "stripeq:seen:{stripe}:20261128"},
		{"stripe-3", time.Date(2027, 1, 2, 8, 0, 0, 0, time.UTC), "stripeq:seen:{stripe-3}:20270102"},
		// The UTC day, whatever the local zone of the process.
		{"stripe", time.Date(2026, 11, 28, 23, 30, 0, 0, time.FixedZone("UTC-5", -5*3600)), "stripeq:seen:{stripe}:20261129"},
	}
	for _, tt := range tests {
		if got := Key(tt.queue, tt.created.Unix()); got != tt.want {
			t.Errorf("Key(%q, %v) = %q, want %q", tt.queue, tt.created, got, tt.want)
		}
	}
}

// TestMarks runs each case against a real Redis, at a "now" of 15:00 UTC
// tomorrow, and checks what a redis-cli user would see: the field, its
// value and the key's expiry.
//
// Redis judges EXPIREAT by its own clock, so "now" follows the real date:
// a fixed date would have every key already expired once it is past. Being
// ahead of the real clock keeps every expiry checked here in Redis's
// future, whatever the time of day the test runs.
func TestMarks(t *testing.T) {
	now := time.Now().UTC().Truncate(24 * time.Hour).Add(24*time.Hour + 15*time.Hour)
	const window = 7 * 24 * time.Hour
	tests := []struct {
		name    string
		created time.Time
		marked  bool          // a marker is written
		wantTTL time.Duration // the key expires this long after now
		dayAgo  int           // the key's day, in days before now's
	}{
		{"created today", now.Add(-time.Hour), true, 9*time.Hour + window, 0},
		{"created 6 days ago", now.Add(-6 * 24 * time.Hour), true, 9*time.Hour + 24*time.Hour, 6},
		{"created 7 days and 14 hours ago: its day is still in the window", now.Add(-(7*24 + 14) * time.Hour), true, 9 * time.Hour, 7},
		{"created 8 days ago: past the window", now.Add(-8 * 24 * time.Hour), false, 0, 8},
		{"created tomorrow (a skewed clock)", now.Add(12 * time.Hour), true, 9*time.Hour + 24*time.Hour + window, -1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := redistest.New(t)
			m := New(db.Client, window)
			m.now = func() time.Time { return now }
			ctx := context.Background()
			id := "evt_" + strconv.Itoa(i)
			created := tt.created.Unix()
			queueKey := "stripeq:seen:{stripe}:" + now.AddDate(0, 0, -tt.dayAgo).Format("20060102")

			if seen(t, m, db.Client, id, created) {
				t.Fatalf("marker found before Mark")
			}
			markNow(t, m, db.Client, id, created)
			if got := seen(t, m, db.Client, id, created); got != tt.marked {
				t.Fatalf("marker found after Mark = %v, want %v", got, tt.marked)
			}
			if !tt.marked {
				if n := db.Client.Exists(ctx, queueKey).Val(); n != 0 {
					t.Errorf("key %s exists, want none", queueKey)
				}
				return
			}
			// The expiry is an instant (EXPIREAT), computed from the fixed
			// now: compare instants, not Redis's TTL from its real clock.
			exp, err := db.Client.ExpireTime(ctx, queueKey).Result()
			if err != nil {
				t.Fatal(err)
			}
			if want := now.Add(tt.wantTTL).Unix(); int64(exp/time.Second) != want {
				t.Errorf("key %s expires at %v, want %v", queueKey, time.Unix(int64(exp/time.Second), 0).UTC(), time.Unix(want, 0).UTC())
			}
			v, err := db.Client.HGet(ctx, queueKey, id).Result()
			if err != nil || v != strconv.FormatInt(now.Unix(), 10) {
				t.Errorf("HGET %s %s = %q, %v; want the time it was stored, %d", queueKey, id, v, err, now.Unix())
			}
		})
	}
}

// TestMarkKeepsTheFirstTime checks that marking an event again (the
// repair after a crash, or a redelivery) keeps when it was first stored.
func TestMarkKeepsTheFirstTime(t *testing.T) {
	db := redistest.New(t)
	m := New(db.Client, 0)
	if m.window != DefaultWindow {
		t.Errorf("window = %v, want DefaultWindow %v", m.window, DefaultWindow)
	}
	ctx := context.Background()
	created := time.Now().Add(-time.Hour).Unix()
	first := time.Now().Add(-30 * time.Minute)
	m.now = func() time.Time { return first }
	markNow(t, m, db.Client, "evt_1", created)
	m.now = time.Now
	markNow(t, m, db.Client, "evt_1", created)
	if v := db.Client.HGet(ctx, Key("stripe", created), "evt_1").Val(); v != strconv.FormatInt(first.Unix(), 10) {
		t.Errorf("marker = %s, want the first time %d", v, first.Unix())
	}
}

// TestMarkerSize measures the Redis memory of markers: issue 8 allows 150
// bytes per event at most. 10,000 events of one day, as at 7 events/min
// for a day, in one key (a hash table, past listpack size).
func TestMarkerSize(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 10,000 markers")
	}
	db := redistest.New(t)
	m := New(db.Client, 0)
	ctx := context.Background()
	created := time.Now().Unix()
	const n = 10000
	_, err := db.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			// A real event ID: "evt_" and 24 characters.
			m.Mark(ctx, p, "stripe", "evt_1QabcdEFghIJklMN"+strconv.Itoa(10000+i), created)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	bytes, err := db.Client.MemoryUsage(ctx, Key("stripe", created), 0).Result()
	if err != nil {
		t.Fatal(err)
	}
	per := float64(bytes) / n
	t.Logf("MEMORY USAGE of one day's key with %d markers: %d bytes, %.1f bytes per event", n, bytes, per)
	if per > 150 {
		t.Errorf("%.1f bytes per marker, want at most 150", per)
	}
}

// TestMarker checks that the marker taskstore writes with an event's task
// is the one Mark writes: the same key, field, value and expiry, written
// exactly when Mark writes one, looked up when asked.
func TestMarker(t *testing.T) {
	now := time.Now().UTC().Truncate(24 * time.Hour).Add(15 * time.Hour) // 15:00 UTC today: any day
	m := New(nil, 7*24*time.Hour)
	m.now = func() time.Time { return now }
	tests := []struct {
		name      string
		created   time.Time
		lookup    bool
		wantNil   bool
		wantWrite bool
	}{
		{"created today", now.Add(-time.Hour), false, false, true},
		{"created 6 days ago, looked up", now.Add(-6 * 24 * time.Hour), true, false, true},
		{"created 8 days ago: past the window", now.Add(-8 * 24 * time.Hour), false, true, false},
		{"created 8 days ago, looked up", now.Add(-8 * 24 * time.Hour), true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			created := tt.created.Unix()
			got := m.Marker("stripe-2", "evt_1", created, tt.lookup)
			if (got == nil) != tt.wantNil {
				t.Fatalf("Marker = %+v, want nil %v", got, tt.wantNil)
			}
			if got == nil {
				return
			}
			if got.Write != tt.wantWrite || got.Write != m.Marks(created) || got.Lookup != tt.lookup {
				t.Errorf("Write %v, Lookup %v; want %v, %v", got.Write, got.Lookup, tt.wantWrite, tt.lookup)
			}
			if got.Key != Key("stripe-2", created) || got.Field != "evt_1" || got.Value != strconv.FormatInt(now.Unix(), 10) || !got.ExpireAt.Equal(m.expiry(created)) {
				t.Errorf("Marker = %+v", got)
			}
		})
	}
}
