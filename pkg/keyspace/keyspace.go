// Package keyspace spells every Redis key stripeq reads or writes: its own
// (stripeq:…) and the keys of asynq v0.26 it reads and writes directly
// (asynq:…), as asynq's internal/base spells asynq's. Production code, the
// bench (deploy/bench) and the tests' helpers (pkg/redistest) build keys
// only through it; TestOnlyKeyspaceSpellsKeys fails on a key literal
// anywhere else, and deploy/manifests checks the "Redis key layout" table of
// this folder's README.md against it.
//
// It is internal to this module, with no compatibility promise for its Go
// API: programs outside it read the built-in records' keys through
// pkg/records, the supported public layout. The key names themselves are
// permanent once deployed, like task types: data already in Redis carries
// them.
//
// The braces in a key are literal: a Redis Cluster hash tag. Every key of
// one queue shares the queue's tag, {<queue>}, so that one Lua script may
// read asynq's task hashes, the Console's index and the failure store of
// the queue together; every key of one object (a customer) shares the
// object's.
package keyspace

import "strconv"

// Prefix starts every key stripeq owns.
const Prefix = "stripeq:"

// tag returns s as a Redis Cluster hash tag: "{s}".
func tag(s string) string { return "{" + s + "}" }

// asynq v0.26's keys (its internal/base), which stripeq's api writes
// (pkg/taskstore), and its worker, dashboard, index and failure store read
// and write beside asynq. pkg/taskstore's tests check them against asynq
// itself.

// AsynqPrefix starts every key of asynq's.
const AsynqPrefix = "asynq:"

// AsynqQueues is asynq's SET of every queue name (base.AllQueues).
const AsynqQueues = AsynqPrefix + "queues"

// Queue returns the prefix of every asynq key of queue: "asynq:{<queue>}:".
// The index's scripts append the rest ("t:<id>", "pending", …).
func Queue(queue string) string { return AsynqPrefix + tag(queue) + ":" }

// Task returns asynq's HASH of the task id of queue (base.TaskKey):
// msg, state, result, … and stripeq's fields beside them (see
// pkg/failures).
func Task(queue, id string) string { return Queue(queue) + "t:" + id }

// Pending returns asynq's LIST of the IDs of queue's tasks waiting for a
// worker (base.PendingKey).
func Pending(queue string) string { return Queue(queue) + "pending" }

// Active returns asynq's LIST of the IDs of queue's tasks being handled
// (base.ActiveKey).
func Active(queue string) string { return Queue(queue) + "active" }

// Scheduled returns asynq's ZSET of queue's tasks scheduled for later,
// by when (base.ScheduledKey).
func Scheduled(queue string) string { return Queue(queue) + "scheduled" }

// Retry returns asynq's ZSET of queue's tasks waiting to be retried, by
// when (base.RetryKey).
func Retry(queue string) string { return Queue(queue) + "retry" }

// Archived returns asynq's ZSET of queue's archived tasks, by when they
// were archived (base.ArchivedKey).
func Archived(queue string) string { return Queue(queue) + "archived" }

// Completed returns asynq's ZSET of queue's completed tasks, by when
// their retention ends (base.CompletedKey).
func Completed(queue string) string { return Queue(queue) + "completed" }

// The records of the built-in handlers (pkg/stripeq/builtin), documented
// for users by pkg/records.

// Customer returns the HASH of the customer record of customer id.
func Customer(id string) string { return Prefix + "customer:" + tag(id) }

// CustomerOpenDisputes returns the SET of the customer's open dispute IDs,
// in the customer record's slot.
func CustomerOpenDisputes(id string) string { return Customer(id) + ":open_disputes" }

// CustomerDisputeEvents returns the HASH, in the customer record's slot,
// of the creation time of the last event applied to the hold, per dispute
// ID.
func CustomerDisputeEvents(id string) string { return Customer(id) + ":dispute_events" }

// Subscription returns the HASH of the subscription record of id.
func Subscription(id string) string { return Prefix + "subscription:" + tag(id) }

// Dispute returns the HASH of the dispute record of id.
func Dispute(id string) string { return Prefix + "dispute:" + tag(id) }

// Charge returns the HASH of what events said about the charge id.
func Charge(id string) string { return Prefix + "charge:" + tag(id) }

// Notifications is the STREAM of every notification.
const Notifications = Prefix + "notifications"

// Notified returns the HASH that records that the notification of kind
// for id went out. Its hash tag is the stream's name, so that one script
// writes both.
func Notified(kind, id string) string {
	return Prefix + "notified:" + tag(Notifications) + ":" + kind + ":" + id
}

// Once returns the STRING of stripeq.Once for the side effect kind of
// key (an event ID, or a key of the handler's own): a running execution's
// claim, or "done".
func Once(key, kind string) string { return Prefix + "once:" + tag(key) + ":" + kind }

// Index returns the prefix of every key of the Console's index of queue
// (pkg/execindex): "stripeq:idx:{<queue>}:".
func Index(queue string) string { return Prefix + "idx:" + tag(queue) + ":" }

// IndexAll returns the index's ZSET of every task ID of queue, by
// received time (unix ms).
func IndexAll(queue string) string { return Index(queue) + "all" }

// IndexSet returns the index's ZSET of the task IDs of queue whose field
// (type, livemode, apiVersion, customer, account, ref; prefix in releases
// before 2026-11-30) has value, by received time.
func IndexSet(queue, field, value string) string { return Index(queue) + field + ":" + value }

// IndexKeys returns the index's HASH of task ID → the index keys that hold
// it.
func IndexKeys(queue string) string { return Index(queue) + "keys" }

// IndexValues returns the index's SET of the values of field seen in
// queue, for the Console's filter menus.
func IndexValues(queue, field string) string { return Index(queue) + "values:" + field }

// IndexImplicit returns the index's HASH of field (livemode, apiVersion)
// → its implicit value: the first the index saw, whose executions are in
// no set of that field (pkg/execindex).
func IndexImplicit(queue string) string { return Index(queue) + "implicit" }

// IndexReruns returns the index's ZSET of the re-run copies of the task
// original, by re-run time.
func IndexReruns(queue, original string) string { return Index(queue) + "reruns:" + original }

// IndexRuns returns the LIST of the operators' runs of the task original
// and of its re-run copies, oldest first, as JSON: who ran it, when, why,
// run now or copied, and from which action (the Console's "Re-run
// history").
func IndexRuns(queue, original string) string { return Index(queue) + "runs:" + original }

// IndexRerunSeq returns the index's HASH of original task ID → the number
// of its last re-run copy.
func IndexRerunSeq(queue string) string { return Index(queue) + "rerunseq" }

// Fail returns the prefix of every key of the failure store of queue
// (pkg/failures): "stripeq:fail:{<queue>}:".
func Fail(queue string) string { return Prefix + "fail:" + tag(queue) + ":" }

// FailAll returns the failure store's ZSET of queue's kept failures, by
// when they failed for good.
func FailAll(queue string) string { return Fail(queue) + "all" }

// FailRecord returns the failure store's HASH of the kept failure of task
// id.
func FailRecord(queue, id string) string { return Fail(queue) + "t:" + id }

// FailAttempts returns the LIST of the attempt history of task id.
func FailAttempts(queue, id string) string { return Fail(queue) + "att:" + id }

// Seen returns the HASH of the duplicate markers (pkg/dedupe) of the
// events of queue created on day, a UTC date as "yyyymmdd".
func Seen(queue, day string) string { return Prefix + "seen:" + tag(queue) + ":" + day }

// Slots returns the ZSET of the global concurrency leases of queue
// (QUEUE_NAME, one for every shard).
func Slots(queue string) string { return Prefix + "slots:" + tag(queue) }

// SlotsWanted returns the STRING set for a second each time a task of
// queue is refused a global slot.
func SlotsWanted(queue string) string { return Slots(queue) + ":wanted" }

// Alert returns the prefix of the keys that coordinate the alerts of
// queue's workers: "stripeq:alert:{<queue>}:".
func Alert(queue string) string { return Prefix + "alert:" + tag(queue) + ":" }

// AlertSeen returns the STRING that marks a failure of kind (an event
// type, or "delivery to <destination>") within the alert interval.
func AlertSeen(queue, kind string) string { return Alert(queue) + "seen:" + kind }

// AlertByType returns the HASH of the failures counted since the last
// summary, by kind.
func AlertByType(queue string) string { return Alert(queue) + "bytype" }

// AlertByError returns the HASH of the failures counted since the last
// summary, by error.
func AlertByError(queue string) string { return Alert(queue) + "byerr" }

// AlertLock returns the STRING that holds the right to send the next
// summary.
func AlertLock(queue string) string { return Alert(queue) + "lock" }

// Job returns the HASH of the progress of the Console's bulk re-run job
// id of queue.
func Job(queue, id string) string { return Prefix + "job:" + tag(queue) + ":" + id }

// DeliveryAttempts returns the LIST of the attempts of the delivery task
// id (pkg/stripetask/delivery).
func DeliveryAttempts(id string) string { return Prefix + "delivery:attempts:" + id }

// DeliveryOrder returns the ZSET of the unfinished deliveries to
// destination name of customer's events, by event creation time
// (DESTINATION_ORDER=customer).
func DeliveryOrder(name, customer string) string {
	return Prefix + "delivery:order:" + name + ":" + customer
}

// DeliveryReruns returns the STRING that counts the Console's re-run
// copies of the delivery task id.
func DeliveryReruns(id string) string { return Prefix + "delivery:reruns:" + id }

// Recovery returns the STRING of the record of the recovery id
// (pkg/recovery), as JSON.
func Recovery(id string) string { return Prefix + "recovery:" + id }

// RecoveryEvents returns the STRING of the missing events a dry run
// (the recovery id) listed, as JSON: at most recovery.MaxPreviewEvents.
func RecoveryEvents(id string) string { return Recovery(id) + ":events" }

// Recoveries is the ZSET of recovery IDs by start time.
const Recoveries = Prefix + "recoveries"

// RecoveriesCheck is the STRING lock of the periodic recovery check.
const RecoveriesCheck = Recoveries + ":check"

// DashboardSession returns the HASH of a dashboard login whose cookie
// value has the SHA-256 sum (hex) sum.
func DashboardSession(sum string) string { return Prefix + "dashboard:session:" + sum }

// DashboardSessions returns the ZSET of the keys of user's dashboard
// logins, by sign-in time.
func DashboardSessions(user string) string { return Prefix + "dashboard:sessions:" + user }

// Audit is the STREAM of the dashboard's audit log.
const Audit = Prefix + "audit"

// TestClaim returns the STRING by which a test claims database n of the
// Redis at TEST_REDIS_URL (pkg/redistest); claims live in database 0.
func TestClaim(n int) string { return Prefix + "test:claim:" + strconv.Itoa(n) }
