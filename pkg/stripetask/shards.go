package stripetask

import (
	"hash/fnv"
	"strconv"
	"strings"
)

// MaxShards is the largest number of shard queues [Options.Shards] may
// name.
const MaxShards = 64

// QueueFor returns the queue of the task with ID id. With one shard it is
// o.Queue (DefaultQueue when empty). With more it is "<o.Queue>-<k>", k
// being the FNV-1a 32-bit hash of the event ID modulo o.Shards: stable
// across processes and releases, so every delivery of an event lands in
// the same queue and asynq still rejects the duplicate. A re-run copy
// "<id>:rerun:<n>" goes to its original's queue.
func QueueFor(id string, o Options) string {
	q := o.Queue
	if q == "" {
		q = DefaultQueue
	}
	if o.Shards <= 1 {
		return q
	}
	if orig, _, ok := strings.Cut(id, rerunMark); ok {
		id = orig
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	return q + "-" + strconv.FormatUint(uint64(h.Sum32()%uint32(o.Shards)), 10)
}

// Queues returns every queue [QueueFor] may choose for o, in shard order:
// [o.Queue] with one shard, else "<o.Queue>-0" … "<o.Queue>-<Shards-1>".
func Queues(o Options) []string {
	q := o.Queue
	if q == "" {
		q = DefaultQueue
	}
	if o.Shards <= 1 {
		return []string{q}
	}
	qs := make([]string, o.Shards)
	for i := range qs {
		qs[i] = q + "-" + strconv.Itoa(i)
	}
	return qs
}
