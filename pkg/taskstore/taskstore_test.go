package taskstore_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/redisbatch"
	"github.com/stripeq/stripeq/pkg/redisconn"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/taskstore"
)

// bundle is what a store test works with.
type bundle struct {
	rdb   redis.UniversalClient
	db    *redistest.DB
	store *taskstore.Store
	insp  *asynq.Inspector
}

func setup(t *testing.T) *bundle {
	t.Helper()
	db := redistest.New(t)
	return &bundle{rdb: db.Client, db: db, store: taskstore.New(redisbatch.New(db.Client)), insp: asynq.NewInspectorFromRedisClient(db.Client)}
}

// asynqTask is t as asynq's Client is given it.
func asynqTask(t taskstore.Task) (*asynq.Task, []asynq.Option) {
	opts := []asynq.Option{asynq.TaskID(t.ID), asynq.Queue(t.Queue), asynq.MaxRetry(t.MaxRetry), asynq.Retention(t.Retention)}
	if t.Timeout != 0 {
		opts = append(opts, asynq.Timeout(t.Timeout))
	}
	return asynq.NewTaskWithHeaders(t.Type, t.Payload, t.Headers), opts
}

// stored is what Redis holds for one queue after an enqueue.
type stored struct {
	hash    map[string]string // the task hash
	pending []string
	queues  []string // asynq:queues
}

func snapshot(t *testing.T, rdb redis.UniversalClient, queue, id string) stored {
	t.Helper()
	ctx := context.Background()
	h, err := rdb.HGetAll(ctx, "asynq:{"+queue+"}:t:"+id).Result()
	if err != nil {
		t.Fatal(err)
	}
	p, err := rdb.LRange(ctx, "asynq:{"+queue+"}:pending", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	q, err := rdb.SMembers(ctx, "asynq:queues").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(q)
	return stored{hash: h, pending: p, queues: q}
}

// canonical returns a TaskMessage with its header map entries in one
// order: the top-level fields in their order, then the map entries (field
// 15, the last field number) sorted by their bytes. proto.Marshal writes
// map entries in map order, which varies.
func canonical(t *testing.T, msg []byte) []byte {
	t.Helper()
	var fields, entries [][]byte
	for b := msg; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("msg: %v", protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			t.Fatalf("msg: %v", protowire.ParseError(m))
		}
		if num == 15 {
			entries = append(entries, b[:n+m])
		} else {
			if len(entries) > 0 {
				t.Fatalf("msg: field %d after the headers", num)
			}
			fields = append(fields, b[:n+m])
		}
		b = b[n+m:]
	}
	slices.SortFunc(entries, bytes.Compare)
	return bytes.Join(append(fields, entries...), nil)
}

var cases = []struct {
	name string
	task taskstore.Task
}{
	{"a Stripe event's task", taskstore.Task{
		ID: "evt_1Layout", Type: "stripe:customer.created", Queue: "stripe",
		Payload:  []byte(`{"id":"evt_1Layout","object":"event","type":"customer.created"}`),
		Headers:  map[string]string{"type": "customer.created", "livemode": "false", "apiVersion": "2023-10-16", "created": "1764460800", "customer": "cus_1", "objectId": "cus_1", "refs": "jenny@example.com"},
		MaxRetry: 7, Retention: 72 * time.Hour,
	}},
	{"one header, empty", taskstore.Task{
		ID: "evt_1Empty", Type: "stripe:invoice.paid", Queue: "stripe-3", Payload: []byte("{}"),
		Headers: map[string]string{"apiVersion": ""}, MaxRetry: 7, Retention: time.Hour,
	}},
	{"no headers, no payload, no retry, no retention", taskstore.Task{
		ID: "t1", Type: "t", Queue: "q",
	}},
	{"binary payload, a timeout, a long retention", taskstore.Task{
		ID: "evt_1Bin", Type: "stripe:charge.failed", Queue: "stripe",
		Payload: append([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0xff}, bytes.Repeat([]byte{0x80}, 300)...),
		Headers: map[string]string{"a": "1", "b": ""}, MaxRetry: 25, Retention: 30 * 24 * time.Hour, Timeout: 10 * time.Minute,
	}},
}

// TestEncodeMatchesAsynq guards Encode: the message asynq's Client writes
// for the same task is the same bytes, but for the order of the header
// map's entries (the same bytes with at most one header).
func TestEncodeMatchesAsynq(t *testing.T) {
	b := setup(t)
	client := asynq.NewClientFromRedisClient(b.rdb)
	ctx := context.Background()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			task, opts := asynqTask(tt.task)
			if _, err := client.EnqueueContext(ctx, task, opts...); err != nil {
				t.Fatal(err)
			}
			theirs := []byte(snapshot(t, b.rdb, tt.task.Queue, tt.task.ID).hash["msg"])
			got := taskstore.Encode(tt.task)
			if !bytes.Equal(canonical(t, got), canonical(t, theirs)) {
				t.Errorf("Encode = %x\nasynq    %x", got, theirs)
			}
			if len(tt.task.Headers) <= 1 && !bytes.Equal(got, theirs) {
				t.Errorf("Encode = %x\nasynq    %x", got, theirs)
			}
		})
	}
}

// TestStoreMatchesAsynq guards Store's layout: the same task enqueued by
// asynq's Client and stored by Store gives the same task hash (the same
// message, state "pending", a pending_since), the same pending list entry
// and the queue in asynq:queues, and the Inspector reads the same task.
func TestStoreMatchesAsynq(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			if err := b.rdb.FlushDB(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			client := asynq.NewClientFromRedisClient(b.rdb) // a new process: it adds the queue to asynq:queues
			task, opts := asynqTask(tt.task)
			before := time.Now()
			if _, err := client.EnqueueContext(ctx, task, opts...); err != nil {
				t.Fatal(err)
			}
			theirs := snapshot(t, b.rdb, tt.task.Queue, tt.task.ID)
			theirInfo, err := b.insp.GetTaskInfo(tt.task.Queue, tt.task.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.rdb.FlushDB(ctx).Err(); err != nil {
				t.Fatal(err)
			}

			store := taskstore.New(redisbatch.New(b.rdb)) // a new process: it adds the queue again
			if res, err := store.Store(ctx, tt.task, nil); err != nil || res != taskstore.Stored {
				t.Fatalf("Store = %v, %v; want Stored", res, err)
			}
			after := time.Now()
			ours := snapshot(t, b.rdb, tt.task.Queue, tt.task.ID)
			ourInfo, err := b.insp.GetTaskInfo(tt.task.Queue, tt.task.ID)
			if err != nil {
				t.Fatal(err)
			}

			if !slices.Equal(slices.Sorted(maps.Keys(ours.hash)), slices.Sorted(maps.Keys(theirs.hash))) {
				t.Errorf("task hash fields = %v, asynq's %v", slices.Sorted(maps.Keys(ours.hash)), slices.Sorted(maps.Keys(theirs.hash)))
			}
			if ours.hash["state"] != "pending" || theirs.hash["state"] != "pending" {
				t.Errorf("state = %q, asynq's %q; want pending", ours.hash["state"], theirs.hash["state"])
			}
			for who, h := range map[string]map[string]string{"Store": ours.hash, "asynq": theirs.hash} {
				ns, err := strconv.ParseInt(h["pending_since"], 10, 64)
				if err != nil || ns < before.UnixNano() || ns > after.UnixNano() {
					t.Errorf("%s's pending_since = %q, want unix nanoseconds of the enqueue", who, h["pending_since"])
				}
			}
			got := canonical(t, []byte(ours.hash["msg"]))
			want := canonical(t, []byte(theirs.hash["msg"]))
			if !bytes.Equal(got, want) {
				t.Errorf("msg = %x\nasynq %x", got, want)
			}
			if !slices.Equal(ours.pending, theirs.pending) || !slices.Equal(ours.pending, []string{tt.task.ID}) {
				t.Errorf("pending = %v, asynq's %v", ours.pending, theirs.pending)
			}
			if !slices.Equal(ours.queues, theirs.queues) || !slices.Equal(ours.queues, []string{tt.task.Queue}) {
				t.Errorf("asynq:queues = %v, asynq's %v", ours.queues, theirs.queues)
			}

			if ourInfo.Type != theirInfo.Type || !bytes.Equal(ourInfo.Payload, theirInfo.Payload) ||
				!maps.Equal(ourInfo.Headers, theirInfo.Headers) || ourInfo.Queue != theirInfo.Queue ||
				ourInfo.ID != theirInfo.ID || ourInfo.State != theirInfo.State ||
				ourInfo.MaxRetry != theirInfo.MaxRetry || ourInfo.Retention != theirInfo.Retention ||
				ourInfo.Timeout != theirInfo.Timeout || !ourInfo.Deadline.Equal(theirInfo.Deadline) {
				t.Errorf("Inspector reads\n%+v\nasynq's\n%+v", ourInfo, theirInfo)
			}
			if ourInfo.State != asynq.TaskStatePending || ourInfo.Type != tt.task.Type || !bytes.Equal(ourInfo.Payload, tt.task.Payload) {
				t.Errorf("Inspector reads %+v", ourInfo)
			}
		})
	}
}

// TestStoredTaskIsProcessed: an asynq.Server runs a task Store stored,
// completes it and keeps it for its retention; storing it again then is a
// Conflict.
func TestStoredTaskIsProcessed(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	task := cases[0].task
	task.Queue = "processed"
	if res, err := b.store.Store(ctx, task, nil); err != nil || res != taskstore.Stored {
		t.Fatalf("Store = %v, %v; want Stored", res, err)
	}

	type run struct {
		id, typ string
		payload []byte
		headers map[string]string
	}
	ran := make(chan run, 1)
	srv := asynq.NewServer(b.db.Opt, asynq.Config{
		Concurrency: 1, Queues: map[string]int{task.Queue: 1}, LogLevel: asynq.FatalLevel,
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc(task.Type, func(ctx context.Context, tk *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		ran <- run{id, tk.Type(), tk.Payload(), tk.Headers()}
		return nil
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	select {
	case r := <-ran:
		if r.id != task.ID || r.typ != task.Type || !bytes.Equal(r.payload, task.Payload) || !maps.Equal(r.headers, task.Headers) {
			t.Errorf("the handler got %+v", r)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the server did not run the stored task")
	}
	info := poll.Value(t, 10*time.Second, "the task completed", func() (*asynq.TaskInfo, error) {
		return redistest.TaskIn(b.insp, task.Queue, task.ID, asynq.TaskStateCompleted)
	})
	if info.Retention != task.Retention || info.CompletedAt.IsZero() {
		t.Errorf("completed task: retention %v, completed at %v; want %v, set", info.Retention, info.CompletedAt, task.Retention)
	}
	if res, err := b.store.Store(ctx, task, nil); err != nil || res != taskstore.Conflict {
		t.Errorf("Store after completion = %v, %v; want Conflict", res, err)
	}
}

// TestStoreConflict: a second Store of the same ID stores nothing, even
// with another payload.
func TestStoreConflict(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	task := cases[0].task
	if res, err := b.store.Store(ctx, task, nil); err != nil || res != taskstore.Stored {
		t.Fatalf("first Store = %v, %v; want Stored", res, err)
	}
	first := snapshot(t, b.rdb, task.Queue, task.ID)
	task.Payload = []byte(`{"other":true}`)
	if res, err := b.store.Store(ctx, task, nil); err != nil || res != taskstore.Conflict {
		t.Fatalf("second Store = %v, %v; want Conflict", res, err)
	}
	if again := snapshot(t, b.rdb, task.Queue, task.ID); !maps.Equal(again.hash, first.hash) || !slices.Equal(again.pending, first.pending) {
		t.Errorf("the second Store changed the task: %v, pending %v", again.hash, again.pending)
	}
}

// TestStoreMarker: the marker is written exactly when the task is stored
// or already exists, keeps its first value, and answers Seen when looked
// up; never when the script fails.
func TestStoreMarker(t *testing.T) {
	const markerKey = "stripeq:seen:{stripe}:20261130"
	expireAt := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	marker := func(value string, lookup, write bool) *taskstore.Marker {
		return &taskstore.Marker{Key: markerKey, Field: "evt_1Layout", Value: value, ExpireAt: expireAt, Lookup: lookup, Write: write}
	}
	tests := []struct {
		name       string
		prepare    func(t *testing.T, b *bundle) // before the Store
		marker     *taskstore.Marker
		want       taskstore.Result
		wantErr    bool
		wantTask   bool   // a pending task after it
		wantMarker string // the marker's value after it; "" for none
	}{
		{"new task", nil, marker("100", false, true), taskstore.Stored, false, true, "100"},
		{"new task, looked up first", nil, marker("100", true, true), taskstore.Stored, false, true, "100"},
		{"new task, no marker", nil, nil, taskstore.Stored, false, true, ""},
		{"new task, only looked up", nil, marker("100", true, false), taskstore.Stored, false, true, ""},
		{"task exists without its marker", storeFirst(nil), marker("100", false, true), taskstore.Conflict, false, true, "100"},
		{"task and marker exist: the first value kept", storeFirst(marker("50", false, true)), marker("100", false, true), taskstore.Conflict, false, true, "50"},
		{"marker exists, looked up: nothing stored", writeMarker(markerKey, "50"), marker("100", true, true), taskstore.Seen, false, false, "50"},
		{"marker exists, not looked up: stored", writeMarker(markerKey, "50"), marker("100", false, true), taskstore.Stored, false, true, "50"},
		// As asynq's own script, it leaves the task hash written.
		{"the pending list is not a list: the script fails before the marker", setString("asynq:{stripe}:pending"), marker("100", false, true), 0, true, true, ""},
		{"the marker's key is not a hash: the task is stored, the script fails", setString(markerKey), marker("100", false, true), 0, true, true, ""},
		{"the marker's key is not a hash, looked up: fails, nothing stored", setString(markerKey), marker("100", true, true), 0, true, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			ctx := context.Background()
			if tt.prepare != nil {
				tt.prepare(t, b)
			}
			res, err := b.store.Store(ctx, cases[0].task, tt.marker)
			if res != tt.want || (err != nil) != tt.wantErr {
				t.Fatalf("Store = %v, %v; want %v, error %v", res, err, tt.want, tt.wantErr)
			}
			info, ierr := b.insp.GetTaskInfo("stripe", "evt_1Layout")
			if gotTask := ierr == nil && info.State == asynq.TaskStatePending; gotTask != tt.wantTask {
				t.Errorf("pending task after it: %v (%v), want %v", gotTask, ierr, tt.wantTask)
			}
			typ, _ := b.rdb.Type(ctx, markerKey).Result()
			if typ != "hash" {
				if tt.wantMarker != "" {
					t.Errorf("no marker, want %q", tt.wantMarker)
				}
				return
			}
			got, _ := b.rdb.HGet(ctx, markerKey, "evt_1Layout").Result()
			if got != tt.wantMarker {
				t.Errorf("marker = %q, want %q", got, tt.wantMarker)
			}
			if tt.marker != nil && tt.marker.Write && tt.want != taskstore.Seen {
				if exp, err := b.rdb.ExpireTime(ctx, markerKey).Result(); err != nil || exp != time.Duration(expireAt.Unix())*time.Second {
					t.Errorf("marker expires at %v (%v), want %v", exp, err, expireAt.Unix())
				}
			}
		})
	}
}

func storeFirst(m *taskstore.Marker) func(*testing.T, *bundle) {
	return func(t *testing.T, b *bundle) {
		if res, err := b.store.Store(context.Background(), cases[0].task, m); err != nil || res != taskstore.Stored {
			t.Fatalf("first Store = %v, %v", res, err)
		}
	}
}

func writeMarker(key, value string) func(*testing.T, *bundle) {
	return func(t *testing.T, b *bundle) {
		if err := b.rdb.HSet(context.Background(), key, "evt_1Layout", value).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func setString(key string) func(*testing.T, *bundle) {
	return func(t *testing.T, b *bundle) {
		if err := b.rdb.Set(context.Background(), key, "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStoreConcurrently: of many callers storing the same ID at once,
// exactly one stores it.
func TestStoreConcurrently(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	const callers = 64
	results := make(chan taskstore.Result, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			task := cases[0].task
			task.Payload = []byte(strconv.Itoa(i))
			m := &taskstore.Marker{Key: "stripeq:seen:{stripe}:20261130", Field: task.ID, Value: strconv.Itoa(i), ExpireAt: time.Now().Add(time.Hour), Lookup: i%2 == 0, Write: true}
			res, err := b.store.Store(ctx, task, m)
			if err != nil {
				t.Error(err)
			}
			results <- res
		})
	}
	wg.Wait()
	close(results)
	count := map[taskstore.Result]int{}
	for r := range results {
		count[r]++
	}
	if count[taskstore.Stored] != 1 || count[taskstore.Stored]+count[taskstore.Conflict]+count[taskstore.Seen] != callers {
		t.Errorf("results %v; want one Stored, the rest Conflict or Seen", count)
	}
	if n, _ := b.rdb.LLen(ctx, "asynq:{stripe}:pending").Result(); n != 1 {
		t.Errorf("%d pending, want 1", n)
	}
}

// TestStoreWaitReplicas: with WaitReplicas, a write no replica confirms is
// ErrNotReplicated (a standalone Redis has none); an answer that wrote
// nothing is not.
func TestStoreWaitReplicas(t *testing.T) {
	const markerKey = "stripeq:seen:{stripe}:20261130"
	tests := []struct {
		name    string
		prepare func(t *testing.T, b *bundle)
		marker  *taskstore.Marker
		want    taskstore.Result
		wantErr error
	}{
		{"stored", nil, nil, 0, redisconn.ErrNotReplicated},
		{"exists, its marker written", storeFirst(nil), &taskstore.Marker{Key: markerKey, Field: "evt_1Layout", Value: "1", ExpireAt: time.Now().Add(time.Hour), Write: true}, 0, redisconn.ErrNotReplicated},
		{"exists, no marker", storeFirst(nil), nil, taskstore.Conflict, nil},
		{"marker seen", writeMarker(markerKey, "1"), &taskstore.Marker{Key: markerKey, Field: "evt_1Layout", Value: "2", ExpireAt: time.Now().Add(time.Hour), Lookup: true, Write: true}, taskstore.Seen, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			if tt.prepare != nil {
				tt.prepare(t, b)
			}
			b.store.WaitReplicas = 1
			b.store.WaitTimeout = 20 * time.Millisecond
			res, err := b.store.Store(context.Background(), cases[0].task, tt.marker)
			if res != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("Store = %v, %v; want %v, %v", res, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestStoreAfterScriptFlush: a Redis that lost its script cache (a
// restart, a failover) gets the script itself. It runs on its own
// redis-server: SCRIPT FLUSH is server-wide.
func TestStoreAfterScriptFlush(t *testing.T) {
	srv := redistest.Start(t)
	opt, err := redisconn.Parse(srv.URL(0))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redisconn.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()
	store := taskstore.New(redisbatch.New(rdb))
	for i := range 2 {
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		task := cases[0].task
		task.ID += strconv.Itoa(i)
		if res, err := store.Store(ctx, task, nil); err != nil || res != taskstore.Stored {
			t.Fatalf("Store %d = %v, %v; want Stored", i, res, err)
		}
	}
}

// TestStoreInvalid: a task without an ID, a type or a queue is refused
// before Redis, as asynq's Client refuses it.
func TestStoreInvalid(t *testing.T) {
	store := taskstore.New(redisbatch.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})))
	for _, task := range []taskstore.Task{{Type: "t", Queue: "q"}, {ID: "i", Queue: "q"}, {ID: "i", Type: "t", Queue: " "}} {
		if _, err := store.Store(context.Background(), task, nil); !errors.Is(err, taskstore.ErrInvalid) {
			t.Errorf("Store(%+v) = %v, want ErrInvalid", task, err)
		}
	}
}
