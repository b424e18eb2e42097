// Package execindex is a Redis index of stripeq's executions by event
// metadata, so that the Console can filter a queue of 100,000 retained
// tasks by type, livemode, API version, customer or account and page
// through them newest first.
//
// asynq has no search: it lists tasks by queue and state only. The index
// fills that gap. The api adds an entry in the background once it has
// stored a task ([Writer]); the dashboard adds one for every re-run copy
// it enqueues, and reconciles the index with asynq for what the api missed.
// An event's metadata never changes, so an entry is written once.
//
// The index stores metadata → task ID only. A task's state changes inside
// asynq's own Lua scripts, so it is never copied here: [Index.Query] reads
// it from asynq's task hash (asynq:{queue}:t:<id>, field "state") inside
// the same script that walks the index. An entry whose task no longer
// exists (deleted past its retention by asynq's janitor, trimmed from the
// archive, or deleted by an operator) is dropped when a query meets it, and
// by [Index.Prune], which the dashboard runs periodically.
//
// # Keys
//
// Every key of a queue shares one hash tag, the queue name, which is also
// the hash tag of asynq's own keys for the queue. So all of them live in
// one Redis Cluster slot, and one Lua script may read the index and asynq's
// task hashes together. With queue "stripe":
//
//	stripeq:idx:{stripe}:all                          ZSET task ID → received time (unix ms)
//	stripeq:idx:{stripe}:type:<type>                  ZSET, e.g. type:invoice.paid
//	stripeq:idx:{stripe}:prefix:<prefix>              ZSET, no longer written (see below); older releases' entries
//	                                                   are in one per dot-prefix of their type: prefix:invoice
//	stripeq:idx:{stripe}:livemode:<true|false>        ZSET, none for the implicit value (see below)
//	stripeq:idx:{stripe}:apiVersion:<version>         ZSET, none for the implicit value
//	stripeq:idx:{stripe}:implicit                     HASH livemode, apiVersion → the implicit value: the first seen
//	stripeq:idx:{stripe}:customer:<cus_…>             ZSET
//	stripeq:idx:{stripe}:account:<acct_…>             ZSET
//	stripeq:idx:{stripe}:ref:<id or email>            ZSET, by data.object's ID and what it names (stripetask.Metadata's
//	                                                   ObjectID and Refs): ref:in_…, ref:ch_…, ref:pi_…, ref:sub_…, ref:dp_…,
//	                                                   ref:cs_…, ref:<the customer's email, lower-cased>
//	stripeq:idx:{stripe}:source:<source>              ZSET, only of the executions that did not come as a webhook delivery
//	                                                   (stripetask.Metadata's Source): source:recovery; a webhook's entry
//	                                                   is in none, so only recovered executions pay for it
//	stripeq:idx:{stripe}:keys                         HASH task ID → the keys above that hold it: "=" then tag, length,
//	                                                   ":", value for each: =t12:invoice.paidm5:falsev10:2023-10-16…
//	                                                   (t type, and the prefix: keys older releases derived from it; m livemode,
//	                                                   v apiVersion, c customer, a account, r ref, R reruns, k any
//	                                                   other key whole, as source:recovery, which older removers read too); entries written before are "<length>:<key>"
//	                                                   repeated, or keys joined by "\n", and stay readable
//	stripeq:idx:{stripe}:values:<field>               SET of the values seen, for type, apiVersion, account; a value
//	                                                   is dropped only once its set is empty
//	stripeq:idx:{stripe}:reruns:<original task ID>    ZSET re-run copy ID → time of the re-run
//	stripeq:idx:{stripe}:rerunseq                     HASH original task ID → number of its last re-run
//
// A field's implicit value has no set either: one livemode and one API
// version are nearly every event's in most deployments, and their sets
// would cost a ZADD and about 129 bytes an event while narrowing nothing.
// The first value the index sees of each is its implicit value (kept in
// the implicit hash); a filter on it is answered as "in none of the
// field's other values' sets" (implicit.go).
//
// A type prefix has no set of its own. [Index.Query] and [Shards.Scan]
// answer a [Filter]'s TypePrefix from the type sets of the types under it,
// which values:type lists: "invoice" is the union of type:invoice.paid,
// type:invoice.payment_failed, and so on (types are disjoint, so the
// union's size is the sum of theirs). Every entry is in its type set,
// however it was written, so this answers for old entries and new alike.
// Releases before 2026-11-30 also wrote a prefix:<p> set per dot-prefix
// of the type (189 bytes an event); nothing reads them now. The removal
// script still removes an ID from the prefix sets of its type, so those
// sets drain as their entries are removed (by asynq's retention, Prune or
// an operator) and are gone once the last entry written before the
// upgrade is.
//
// With QUEUE_SHARDS each shard queue ("stripe-0", …) has its own index
// under its own hash tag (stripeq:idx:{stripe-0}:…), and [Shards] answers
// for all of them as one.
//
// No request path uses KEYS or SCAN. Scripts need Redis ≥ 6.2 (ZMSCORE)
// and also run on miniredis.
//
// Internal to this module, with no compatibility promise: a program
// outside it should not import it (pkg/README.md lists the packages).
package execindex

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// States of an asynq task, as asynq names them. [Counts] is indexed by
// them.
const (
	StatePending   = "pending"
	StateActive    = "active"
	StateScheduled = "scheduled"
	StateRetry     = "retry"
	StateArchived  = "archived"
	StateCompleted = "completed"
)

// States lists every state a Stripe task can be in, in the order of its
// life.
var States = []string{StatePending, StateActive, StateScheduled, StateRetry, StateArchived, StateCompleted}

// Fields of the metadata that [Index.Values] lists.
const (
	FieldType       = "type"
	FieldAPIVersion = "apiVersion"
	FieldAccount    = "account"
)

// smallSet is the size up to which Query walks a set entry by entry: about
// 15 ms of Redis time.
const smallSet = 5000

// MaxLimit is the largest page [Index.Query] returns.
const MaxLimit = 500

// MaxExamined is the most index entries one [Index.Query] examines: about
// 25 ms of Redis time on a 2-core machine. A filter that selects more
// (in its smallest set, within its time range) is answered from the
// newest MaxExamined, with [Page.Capped] set.
const MaxExamined = 20_000

// MaxOffset is the largest offset [Index.Query] accepts; deeper pages are
// reached by narrowing the filter or the time range.
const MaxOffset = 10_000

// Errors returned by the index. Each reads well with the package name.
var (
	// ErrInvalidFilter means a Filter has a value the index cannot use,
	// such as an unknown state. Its message names the field.
	ErrInvalidFilter = errors.New("invalid filter")
)

// Index is the execution index of one asynq queue.
type Index struct {
	rdb     redis.UniversalClient
	queue   string
	pre     string // "stripeq:idx:{queue}:"
	small   int    // largest set the small plan of Query walks
	examine int    // MaxExamined, lowered by tests

	setopsOnce sync.Once
	setops     bool

	impl implicitCache // the implicit values, as the writer last read them
}

// New returns the index of queue (stripetask.DefaultQueue when empty) in
// rdb.
func New(rdb redis.UniversalClient, queue string) *Index {
	if queue == "" {
		queue = stripetask.DefaultQueue
	}
	return &Index{rdb: rdb, queue: queue, pre: KeyPrefix(queue), small: smallSet, examine: MaxExamined}
}

// SetMaxExamined sets the most index entries one Query of ix examines:
// MaxExamined unless set; n < 1 restores it. Tests lower it to reach the
// cap with few entries.
func (ix *Index) SetMaxExamined(n int) {
	if n < 1 {
		n = MaxExamined
	}
	ix.examine = n
}

// KeyPrefix returns the prefix of every index key of queue:
// "stripeq:idx:{queue}:".
func KeyPrefix(queue string) string { return keyspace.Index(queue) }

// Queue returns the queue the index covers.
func (ix *Index) Queue() string { return ix.queue }

// suffixes returns the index keys (without the prefix) that hold an
// execution with metadata m. A type prefix has no set of its own: Query
// and Scan answer it from the type sets of the types under it. Nor has a
// field's implicit value (implicit, by field; see implicit.go).
func suffixes(m stripetask.Metadata, implicit map[string]string) []string {
	s := []string{"type:" + m.Type}
	if v := strconv.FormatBool(m.Livemode); implicit["livemode"] != v {
		s = append(s, "livemode:"+v)
	}
	if v, ok := implicit[FieldAPIVersion]; !ok || v != m.APIVersion {
		s = append(s, "apiVersion:"+m.APIVersion)
	}
	if m.Customer != "" {
		s = append(s, "customer:"+m.Customer)
	}
	if m.Account != "" {
		s = append(s, "account:"+m.Account)
	}
	if m.ObjectID != "" && m.ObjectID != m.Customer {
		s = append(s, "ref:"+m.ObjectID)
	}
	for _, r := range m.Refs {
		s = append(s, "ref:"+r)
	}
	if m.Source != "" {
		// Only an event that did not come as a webhook delivery (a
		// recovery's) pays for this set.
		s = append(s, "source:"+m.Source)
	}
	return s
}

// Add indexes the task id with metadata m, received at t. Adding an ID
// again keeps its first received time. It is one MULTI/EXEC round trip.
func (ix *Index) Add(ctx context.Context, id string, m stripetask.Metadata, t time.Time) error {
	return ix.add(ctx, id, m, t, "")
}

// AddRerun indexes copyID, a re-run of original enqueued at t, and links
// the two in original's re-run history.
func (ix *Index) AddRerun(ctx context.Context, original, copyID string, m stripetask.Metadata, t time.Time) error {
	return ix.add(ctx, copyID, m, t, original)
}

func (ix *Index) add(ctx context.Context, id string, m stripetask.Metadata, t time.Time, rerunOf string) error {
	if id == "" || m.Type == "" {
		return fmt.Errorf("execindex: add: empty task ID or type")
	}
	_, err := ix.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		ix.queueAdd(ctx, p, id, m, t, rerunOf)
		return nil
	})
	if err != nil {
		return fmt.Errorf("execindex: add %s: %w", id, err)
	}
	return nil
}

// AddTo queues on p the writes of [Index.Add], for a caller that sends
// them with its own commands in one round trip. The entry in the "all"
// set is written last, so an interrupted pipeline leaves the task
// unindexed, and the dashboard's reconcile indexes it again. It returns
// that last command, whose error tells whether the entry is complete, or
// nil, queuing nothing, for an empty id or type.
func (ix *Index) AddTo(ctx context.Context, p redis.Pipeliner, id string, m stripetask.Metadata, t time.Time) redis.Cmder {
	if id == "" || m.Type == "" {
		return nil
	}
	return ix.queueAdd(ctx, p, id, m, t, "")
}

func (ix *Index) queueAdd(ctx context.Context, p redis.Pipeliner, id string, m stripetask.Metadata, t time.Time, rerunOf string) redis.Cmder {
	return ix.AddEntriesTo(ctx, p, []Entry{{ID: id, Meta: m, At: t, rerunOf: rerunOf}})[0]
}

// Entry is one execution to index: task ID, its metadata and when it was
// received.
type Entry struct {
	ID   string
	Meta stripetask.Metadata
	At   time.Time

	rerunOf string // AddRerun's original: the entry is in its reruns: set
}

// AddEntriesTo queues on p the writes that index every entry, as
// [Index.AddTo] does for one, merged by key: one ZADD per set that several entries share (the all
// set, a type's, a customer's), one SADD per values set and one HSET of
// the keys hash, so that a batch costs Redis fewer commands than its
// entries one by one, and leaves the same index. The all set is written
// last (see AddTo). It returns, for each entry, the command whose error
// tells whether its entry is complete (entries share it), or nil for an
// entry with an empty ID or type, which queues nothing.
func (ix *Index) AddEntriesTo(ctx context.Context, p redis.Pipeliner, entries []Entry) []redis.Cmder {
	out := make([]redis.Cmder, len(entries))
	var (
		sets   = map[string][]redis.Z{} // key suffix → members, in entry order
		order  []string                 // suffixes in first-seen order
		values = map[string][]any{}     // values key → values, first seen once
		seen   = map[string]bool{}      // values key + "\x00" + value
		vorder []string
		keys   []any     // the keys hash's field, value pairs
		all    []redis.Z // the all set's members
	)
	value := func(key, v string) {
		if seen[key+"\x00"+v] {
			return
		}
		seen[key+"\x00"+v] = true
		if _, ok := values[key]; !ok {
			vorder = append(vorder, key)
		}
		values[key] = append(values[key], v)
	}
	ids := make(map[string]bool, len(entries))
	for _, e := range entries {
		if e.ID == "" || e.Meta.Type == "" || ids[e.ID] {
			// An ID again: its metadata never changes, and its first
			// time is kept, as ZADD NX keeps it (miniredis would not,
			// within one command).
			continue
		}
		ids[e.ID] = true
		sufs := suffixes(e.Meta, ix.implicit(ctx, e.Meta))
		if e.rerunOf != "" {
			sufs = append(sufs, "reruns:"+e.rerunOf)
		}
		z := redis.Z{Score: float64(e.At.UnixMilli()), Member: e.ID}
		for _, s := range sufs {
			if _, ok := sets[s]; !ok {
				order = append(order, s)
			}
			sets[s] = append(sets[s], z)
		}
		value(keyspace.IndexValues(ix.queue, FieldType), e.Meta.Type)
		value(keyspace.IndexValues(ix.queue, FieldAPIVersion), e.Meta.APIVersion)
		if e.Meta.Account != "" {
			value(keyspace.IndexValues(ix.queue, FieldAccount), e.Meta.Account)
		}
		keys = append(keys, e.ID, joinKeys(sufs))
		all = append(all, z)
	}
	if len(ids) == 0 {
		return out
	}
	for _, s := range order {
		p.ZAddNX(ctx, ix.pre+s, sets[s]...)
	}
	// The values sets after the sets: Values forgets a value only while
	// its set is empty (forgetScript), and a type prefix is answered from
	// the types values:type lists.
	for _, k := range vorder {
		p.SAdd(ctx, k, values[k]...)
	}
	p.HSet(ctx, keyspace.IndexKeys(ix.queue), keys...)
	last := p.ZAddNX(ctx, keyspace.IndexAll(ix.queue), all...)
	for i, e := range entries {
		if e.ID != "" && e.Meta.Type != "" {
			out[i] = last
		}
	}
	return out
}

// joinKeys encodes the index keys of one entry (suffixes, and reruns:)
// for the keys hash: "=" then, for each key, a tag naming its family, the
// length of its value in decimal, ":" and the value:
//
//	=t12:invoice.paidm5:falsev10:2023-10-16c17:cus_NffrFeUfNV2Hrr27:in_1MtHbELkdIwHu7ixl4OzzPMv
//
// Tags: t type (an entry of an older release is also in prefix: of every
// dot-prefix of the type, which remove derives; prefix: keys are never
// written here), m livemode,
// v apiVersion, c customer, a account, r ref, R reruns, and k for any
// other key, whole. The length prefix reads back unambiguously whatever
// a value holds. Entries written before this form stay readable by
// luaRemove: "<length>:<key>" repeated (it starts with a digit), and
// before that keys joined by "\n" (it starts with a letter). A remover
// older than this form cannot read it: dashboards are upgraded before
// apis (deploy/README.md, Upgrades).
func joinKeys(sufs []string) string {
	var b strings.Builder
	b.WriteByte('=')
	for _, s := range sufs {
		tag, v := byte('k'), s
		if fam, val, ok := strings.Cut(s, ":"); ok {
			switch fam {
			case "prefix":
				continue // derived from the type
			case "type", "livemode", "apiVersion", "customer", "account", "ref", "reruns":
				tag, v = keyTags[fam], val
			}
		}
		b.WriteByte(tag)
		b.WriteString(strconv.Itoa(len(v)))
		b.WriteByte(':')
		b.WriteString(v)
	}
	return b.String()
}

// keyTags are the tags of joinKeys, by key family; luaRemove has the same.
var keyTags = map[string]byte{"type": 't', "livemode": 'm', "apiVersion": 'v', "customer": 'c', "account": 'a', "ref": 'r', "reruns": 'R'}

// Remove drops id from the index, and its re-run history when it is an
// original. It is not an error when id is not indexed.
func (ix *Index) Remove(ctx context.Context, id string) error {
	if err := removeScript.Run(ctx, ix.rdb, []string{keyspace.IndexKeys(ix.queue)}, ix.pre, id).Err(); err != nil {
		return fmt.Errorf("execindex: remove %s: %w", id, err)
	}
	return nil
}

// NextRerunID returns a new task ID for a re-run copy of original:
// "<original>:rerun:<n>", n counting from 1.
func (ix *Index) NextRerunID(ctx context.Context, original string) (string, error) {
	n, err := ix.rdb.HIncrBy(ctx, keyspace.IndexRerunSeq(ix.queue), original, 1).Result()
	if err != nil {
		return "", fmt.Errorf("execindex: next re-run ID of %s: %w", original, err)
	}
	return stripetask.RerunID(original, n), nil
}

// Rerun is one re-run copy in an original's history.
type Rerun struct {
	ID string    // task ID of the copy
	At time.Time // when it was enqueued
}

// Reruns returns the re-run copies of original that are still indexed,
// oldest first.
func (ix *Index) Reruns(ctx context.Context, original string) ([]Rerun, error) {
	zs, err := ix.rdb.ZRangeWithScores(ctx, keyspace.IndexReruns(ix.queue, original), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("execindex: re-runs of %s: %w", original, err)
	}
	out := make([]Rerun, 0, len(zs))
	for _, z := range zs {
		out = append(out, Rerun{ID: z.Member.(string), At: time.UnixMilli(int64(z.Score))})
	}
	return out, nil
}

// ReceivedAt returns when id was indexed, and false when it is not.
func (ix *Index) ReceivedAt(ctx context.Context, id string) (time.Time, bool, error) {
	s, err := ix.rdb.ZScore(ctx, keyspace.IndexAll(ix.queue), id).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("execindex: received time of %s: %w", id, err)
	}
	return time.UnixMilli(int64(s)), true, nil
}

// ValueCount is one value of a metadata field and how many indexed
// executions have it.
type ValueCount struct {
	Value string
	Count int64
}

// Values returns the values of field (FieldType, FieldAPIVersion or
// FieldAccount) that indexed executions have, sorted by value, with their
// counts. Values with no execution left are forgotten.
func (ix *Index) Values(ctx context.Context, field string) ([]ValueCount, error) {
	set := keyspace.IndexValues(ix.queue, field)
	vals, err := ix.rdb.SMembers(ctx, set).Result()
	if err != nil {
		return nil, fmt.Errorf("execindex: values of %s: %w", field, err)
	}
	key := map[string]string{FieldType: "type:", FieldAPIVersion: "apiVersion:", FieldAccount: "account:"}[field]
	if key == "" {
		return nil, fmt.Errorf("%w: no values are kept for field %q", ErrInvalidFilter, field)
	}
	cmds := make([]*redis.IntCmd, len(vals))
	var implicit *redis.StringCmd
	var all *redis.IntCmd
	if _, err := ix.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, v := range vals {
			cmds[i] = p.ZCard(ctx, ix.pre+key+v)
		}
		if field == FieldAPIVersion {
			implicit = p.HGet(ctx, keyspace.IndexImplicit(ix.queue), field)
			all = p.ZCard(ctx, keyspace.IndexAll(ix.queue))
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("execindex: values of %s: %w", field, err)
	}
	if implicit != nil && implicit.Err() == nil {
		// The implicit value's executions are every one in no other
		// value's set.
		n := all.Val()
		for i, v := range vals {
			if v != implicit.Val() {
				n -= cmds[i].Val()
			}
		}
		for i, v := range vals {
			if v == implicit.Val() {
				cmds[i].SetVal(max(n, 0))
			}
		}
	}
	out := make([]ValueCount, 0, len(vals))
	var gone []any
	for i, v := range vals {
		if n := cmds[i].Val(); n > 0 {
			out = append(out, ValueCount{v, n})
		} else {
			gone = append(gone, v)
		}
	}
	if len(gone) > 0 {
		// Best effort. A value is forgotten only if its set is still
		// empty, in the same script: Query reads the types under a type
		// prefix from values:type, so a type whose first entry is being
		// written must stay listed.
		ix.forget(ctx, field, gone...)
	}
	slices.SortFunc(out, func(a, b ValueCount) int { return strings.Compare(a.Value, b.Value) })
	return out, nil
}

// forget drops from the values set of field those of vals whose set is
// empty, in one script, and returns how many it dropped.
func (ix *Index) forget(ctx context.Context, field string, vals ...any) (int64, error) {
	key := map[string]string{FieldType: "type:", FieldAPIVersion: "apiVersion:", FieldAccount: "account:"}[field]
	return forgetScript.Run(ctx, ix.rdb, []string{keyspace.IndexValues(ix.queue, field)}, append([]any{ix.pre + key}, vals...)...).Int64()
}

// forgetScript drops from a values set the values whose set is empty.
// An entry's writes add to its sets before the values sets, so a value
// it adds is either kept here or added again after.
// KEYS[1] = the values set; ARGV[1] = the prefix of the values' sets
// ("stripeq:idx:{q}:type:"), ARGV[2…] = the values.
var forgetScript = redis.NewScript(`
local n = 0
for i = 2, #ARGV do
  if redis.call("ZCARD", ARGV[1] .. ARGV[i]) == 0 then n = n + redis.call("SREM", KEYS[1], ARGV[i]) end
end
return n
`)
