package recovery

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
)

// States of a [Record].
const (
	StateRunning = "running"
	StateDone    = "done"
	StateFailed  = "failed"
)

// Redis keys of the records, for an engineer with redis-cli:
//
//	STRING stripeq:recovery:<id>   the Record as JSON; expires RecordTTL after it starts
//	STRING stripeq:recovery:<id>:events a dry run's Record.Events as JSON (at most
//	                               MaxPreviewEvents); expires with the record
//	ZSET   stripeq:recoveries      id → start time (unix ms); the newest KeepRecords
//	STRING stripeq:recoveries:check the periodic check's lock: the replica that
//	                               set it checks; expires within RECOVER_INTERVAL
const (
	listKey      = keyspace.Recoveries
	checkLockKey = keyspace.RecoveriesCheck
)

// RecordTTL is how long a recovery's record is kept; KeepRecords is how
// many the list keeps.
const (
	RecordTTL   = 90 * 24 * time.Hour
	KeepRecords = 100
)

// staleAfter is how long a running record may go without an update before
// it is reported failed: its dashboard stopped during the recovery.
const staleAfter = 2 * time.Minute

// ErrNotFound means no record has the ID.
var ErrNotFound = errors.New("no such recovery")

// Record is what is kept of one recovery, the JSON of GET
// /api/recoveries/{id}.
type Record struct {
	ID    string `json:"id"`
	State string `json:"state"`
	// StartedBy is the user who started it, StartedAt when, UpdatedAt the
	// last progress, FinishedAt when it ended (zero while running).
	StartedBy  string    `json:"started_by"`
	StartedAt  time.Time `json:"started_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Since and Until are the window; Account the one account, if any.
	Since   time.Time `json:"since"`
	Until   time.Time `json:"until"`
	Account string    `json:"account,omitempty"`
	DryRun  bool      `json:"dry_run"`
	// From is, for a run bound to a dry run, that dry run's ID: the run
	// stores only the events it listed.
	From string `json:"from,omitempty"`
	// Listed, Missing and Enqueued are the counts (see the package doc).
	Listed   int `json:"listed"`
	Missing  int `json:"missing"`
	Enqueued int `json:"enqueued"`
	// Error says why a failed recovery stopped; "" otherwise.
	Error    string   `json:"error"`
	Progress Progress `json:"progress"`
	// Events are, for a dry run, the first MaxPreviewEvents missing
	// events in the order Stripe listed them; EventsCapped is true when
	// it found more (Missing counts them all). Kept under their own key
	// and read by [Records.Get] only, not by [Records.List].
	Events       []Event `json:"events,omitempty"`
	EventsCapped bool    `json:"events_capped,omitempty"`
}

// Event is one missing event a dry run found.
type Event struct {
	ID      string    `json:"id"`
	Type    string    `json:"type"`
	Created time.Time `json:"created"`
	// Account is the connected account whose events listed it; "" for
	// the platform.
	Account string `json:"account,omitempty"`
}

// SetProgress sets rec's progress and counts from p.
func (rec *Record) SetProgress(p Progress) {
	rec.Progress = p
	rec.Listed, rec.Missing, rec.Enqueued = p.Listed, p.Missing, p.Enqueued
}

// KeepEvents sets, on a dry run's record, the missing events p kept and
// whether it found more; a run's record keeps none. Called once the
// recovery ends, so that its progress saves do not rewrite them.
func (rec *Record) KeepEvents(p Progress) {
	if !rec.DryRun {
		return
	}
	rec.Events = p.Events
	if rec.Events == nil {
		rec.Events = []Event{}
	}
	rec.EventsCapped = p.Missing > len(p.Events)
}

// NewID returns a new recovery ID, "rec_" and 26 random characters.
func NewID() string { return "rec_" + strings.ToLower(rand.Text()) }

// Records keeps the records of recoveries in Redis.
type Records struct {
	RDB redis.UniversalClient
}

// ValidID reports whether id has the form of [NewID]'s IDs: "rec_" and
// lower-case letters and digits.
func ValidID(id string) bool {
	rest, ok := strings.CutPrefix(id, "rec_")
	if !ok || rest == "" || len(rest) > 64 {
		return false
	}
	for _, c := range rest {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Save writes rec and lists it. Its Events, when not nil, are written
// under their own key, with the same expiry; a Save without them leaves
// those written before.
func (r *Records) Save(ctx context.Context, rec Record) error {
	events := rec.Events
	rec.Events = nil
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	var eb []byte
	if events != nil {
		if eb, err = json.Marshal(events); err != nil {
			return err
		}
	}
	_, err = r.RDB.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, keyspace.Recovery(rec.ID), b, RecordTTL)
		if eb != nil {
			p.Set(ctx, keyspace.RecoveryEvents(rec.ID), eb, RecordTTL)
		}
		p.ZAdd(ctx, listKey, redis.Z{Score: float64(rec.StartedAt.UnixMilli()), Member: rec.ID})
		p.ZRemRangeByRank(ctx, listKey, 0, -KeepRecords-1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("save recovery %s: %w", rec.ID, err)
	}
	return nil
}

// Get reads the record id with its Events, or returns ErrNotFound.
func (r *Records) Get(ctx context.Context, id string) (Record, error) {
	rec, err := r.get(ctx, id)
	if err != nil || !rec.DryRun {
		return rec, err
	}
	b, err := r.RDB.Get(ctx, keyspace.RecoveryEvents(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return rec, nil
	}
	if err == nil {
		err = json.Unmarshal(b, &rec.Events)
	}
	if err != nil {
		return Record{}, fmt.Errorf("read the events of recovery %s: %w", id, err)
	}
	return rec, nil
}

// get reads the record id without its Events.
func (r *Records) get(ctx context.Context, id string) (Record, error) {
	if !ValidID(id) {
		return Record{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	b, err := r.RDB.Get(ctx, keyspace.Recovery(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Record{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return Record{}, fmt.Errorf("read recovery %s: %w", id, err)
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return Record{}, fmt.Errorf("read recovery %s: %w", id, err)
	}
	if rec.State == StateRunning && time.Since(rec.UpdatedAt) > staleAfter {
		rec.State = StateFailed
		rec.Error = "the dashboard running it stopped before it finished; start it again (nothing is stored twice)"
	}
	return rec, nil
}

// List returns the newest records, at most n.
func (r *Records) List(ctx context.Context, n int) ([]Record, error) {
	ids, err := r.RDB.ZRevRange(ctx, listKey, 0, int64(n)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("list recoveries: %w", err)
	}
	recs := make([]Record, 0, len(ids))
	for _, id := range ids {
		rec, err := r.get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}
