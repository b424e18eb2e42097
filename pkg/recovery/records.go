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
	// Listed, Missing and Enqueued are the counts (see the package doc).
	Listed   int `json:"listed"`
	Missing  int `json:"missing"`
	Enqueued int `json:"enqueued"`
	// Error says why a failed recovery stopped; "" otherwise.
	Error    string   `json:"error"`
	Progress Progress `json:"progress"`
}

// NewID returns a new recovery ID, "rec_" and 26 random characters.
func NewID() string { return "rec_" + strings.ToLower(rand.Text()) }

// Records keeps the records of recoveries in Redis.
type Records struct {
	RDB redis.UniversalClient
}

// Save writes rec and lists it.
func (r *Records) Save(ctx context.Context, rec Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = r.RDB.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, keyspace.Recovery(rec.ID), b, RecordTTL)
		p.ZAdd(ctx, listKey, redis.Z{Score: float64(rec.StartedAt.UnixMilli()), Member: rec.ID})
		p.ZRemRangeByRank(ctx, listKey, 0, -KeepRecords-1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("save recovery %s: %w", rec.ID, err)
	}
	return nil
}

// Get reads the record id, or returns ErrNotFound.
func (r *Records) Get(ctx context.Context, id string) (Record, error) {
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
		rec, err := r.Get(ctx, id)
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
