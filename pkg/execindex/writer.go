package execindex

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/stripetask"
)

// WriterQueue is how many entries a [Writer] holds for writing before it
// drops new ones (which the dashboard's reconcile indexes later).
const WriterQueue = 10_000

// writerBatch is the most entries a Writer sends in one pipeline.
const writerBatch = 256

// WriterLinger is how long a [Writer] waits for more entries to join a
// batch before it sends it, unless a Flush or Close waits for it: a busy
// api then sends fewer, larger pipelines, whose writes merge by key
// ([Index.AddEntriesTo]), and the Console sees an entry at most this much
// later.
const WriterLinger = 5 * time.Millisecond

// Adder queues the writes of index entries on a pipeline; [*Shards] and
// [*Index] are ones.
type Adder interface {
	AddTo(ctx context.Context, p redis.Pipeliner, id string, m stripetask.Metadata, t time.Time) redis.Cmder
}

// EntriesAdder is an [Adder] that also merges a batch of entries' writes
// ([Index.AddEntriesTo]); [*Shards] and [*Index] are ones. A Writer of one
// sends each batch merged.
type EntriesAdder interface {
	Adder
	AddEntriesTo(ctx context.Context, p redis.Pipeliner, entries []Entry) []redis.Cmder
}

// Writer adds index entries in the background, so that the api answers a
// delivery without waiting for them: an entry is only for the Console, and
// the dashboard's reconcile ([Shards.Reconcile]) indexes any task whose
// entry is missing. Entries queued while a pipeline is under way go
// together in the next one, up to 256, so a busy api sends few, large
// pipelines, their writes merged by key when ix is an [EntriesAdder]; a
// batch waits up to [WriterLinger] to fill. It is safe for concurrent use.
type Writer struct {
	rdb redis.UniversalClient
	ix  Adder
	log *slog.Logger

	queue   chan Entry
	mu      sync.Mutex // guards waiters
	waiters []chan struct{}
	dropped atomic.Int64
	failed  atomic.Int64
	closed  atomic.Bool
	stop    chan struct{} // closed by Close
	done    chan struct{} // closed when run returns
}

// NewWriter starts a Writer of ix's entries on rdb. Stop it with
// [Writer.Close].
func NewWriter(rdb redis.UniversalClient, ix Adder, log *slog.Logger) *Writer {
	w := &Writer{rdb: rdb, ix: ix, log: log, queue: make(chan Entry, WriterQueue), stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// Add queues the entry of task id, with metadata m, received at t. It
// never blocks: with WriterQueue entries already waiting (Redis too slow or
// down), or once the Writer is closed, the entry is dropped and counted,
// and reconcile indexes it later.
func (w *Writer) Add(id string, m stripetask.Metadata, t time.Time) {
	if w.closed.Load() {
		w.dropped.Add(1)
		return
	}
	select {
	case w.queue <- Entry{ID: id, Meta: m, At: t}:
	default:
		if w.dropped.Add(1)%1000 == 1 {
			w.log.Warn("Console index queue full; entries left for the dashboard's reconcile", "dropped_so_far", w.dropped.Load())
		}
	}
}

// Dropped returns how many entries were dropped or failed to write since
// the Writer started: the dashboard's reconcile indexes those tasks.
func (w *Writer) Dropped() int64 { return w.dropped.Load() + w.failed.Load() }

// Flush waits until every entry added before it was sent to Redis (written,
// or failed and counted), or ctx ends.
func (w *Writer) Flush(ctx context.Context) error {
	ch := make(chan struct{})
	w.mu.Lock()
	w.waiters = append(w.waiters, ch)
	w.mu.Unlock()
	select { // wake the loop if it waits for entries
	case w.queue <- Entry{}:
	default:
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes what is queued, within ctx, and stops the Writer. Entries
// added later are dropped (a request that outlived the server's shutdown).
func (w *Writer) Close(ctx context.Context) error {
	if w.closed.Swap(true) {
		return nil
	}
	err := w.Flush(ctx)
	close(w.stop)
	<-w.done
	return err
}

func (w *Writer) run() {
	defer close(w.done)
	batch := make([]Entry, 0, writerBatch)
	linger := time.NewTimer(WriterLinger)
	linger.Stop()
	for {
		var e Entry
		select {
		case e = <-w.queue:
		case <-w.stop:
			w.release()
			return
		}
		// Waiters registered before this point wait for entries queued
		// before them, which this batch or an earlier one holds.
		w.mu.Lock()
		waiters := w.waiters
		w.waiters = nil
		w.mu.Unlock()
		batch = append(batch[:0], e)
	fill:
		for len(batch) < writerBatch {
			select {
			case e := <-w.queue:
				batch = append(batch, e)
			default:
				break fill
			}
		}
		if len(waiters) == 0 {
			batch, waiters = w.linger(batch, linger)
		}
		w.write(batch)
		if len(batch) == writerBatch && len(w.queue) > 0 {
			// The queue may still hold entries added before these
			// waiters: they wait for the next batch.
			w.mu.Lock()
			w.waiters = append(waiters, w.waiters...)
			w.mu.Unlock()
			continue
		}
		for _, ch := range waiters {
			close(ch)
		}
	}
}

// linger adds to batch the entries queued within WriterLinger (t, stopped,
// is its timer), up to writerBatch. A Flush's wake-up ends the wait: batch
// then holds every entry added before the Flush, and linger returns the
// waiters registered since the batch began. Close ends it too.
func (w *Writer) linger(batch []Entry, t *time.Timer) ([]Entry, []chan struct{}) {
	t.Reset(WriterLinger)
	defer t.Stop()
	for len(batch) < writerBatch {
		select {
		case e := <-w.queue:
			batch = append(batch, e)
			if e.ID == "" {
				w.mu.Lock()
				waiters := w.waiters
				w.waiters = nil
				w.mu.Unlock()
				return batch, waiters
			}
		case <-t.C:
			return batch, nil
		case <-w.stop:
			return batch, nil
		}
	}
	return batch, nil
}

// release wakes the waiters left when the Writer stops.
func (w *Writer) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ch := range w.waiters {
		close(ch)
	}
	w.waiters = nil
}

// write sends one batch as one pipeline. An entry that fails is counted
// and logged once per batch; reconcile indexes its task later.
func (w *Writer) write(batch []Entry) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmds := make([]redis.Cmder, 0, len(batch))
	_, err := w.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if ea, ok := w.ix.(EntriesAdder); ok {
			for _, c := range ea.AddEntriesTo(ctx, p, batch) { // a Flush's wake-up has no ID: nil
				if c != nil {
					cmds = append(cmds, c)
				}
			}
			return nil
		}
		for _, e := range batch {
			if e.ID == "" {
				continue // a Flush's wake-up
			}
			if c := w.ix.AddTo(ctx, p, e.ID, e.Meta, e.At); c != nil {
				cmds = append(cmds, c)
			}
		}
		return nil
	})
	failed := 0
	for _, c := range cmds {
		if c.Err() != nil {
			failed++
		}
	}
	if failed > 0 {
		w.failed.Add(int64(failed))
		w.log.Warn("events stored but not indexed for the Console; the dashboard's reconcile indexes them", "events", failed, "err", err)
	}
}
