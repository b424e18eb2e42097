package console

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"time"

	"github.com/stripeq/stripeq/dashboard/internal/audit"
	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// maxRuns is the most operator runs kept per execution and its copies.
const maxRuns = 100

// operatorRun is one run of an execution an operator asked for: "Run
// now" of a waiting or failed one, or a copy of a completed one, alone
// or in a bulk re-run. The Console's "Re-run history" shows them.
type operatorRun struct {
	At     time.Time `json:"at"`
	User   string    `json:"user"`
	Reason string    `json:"reason,omitempty"`
	// Action is "run" (it ran again now) or "copy" (a copy, ID, ran).
	Action string `json:"action"`
	// Of is the execution re-run; ID the one that ran: Of itself, or its
	// copy.
	Of string `json:"of"`
	ID string `json:"id"`
	// Via is the audit log's action that asked: rerun, bulk_rerun or
	// rerun_selected.
	Via string `json:"via"`
	URL string `json:"url"`
}

// recordRun keeps r, asked for by by (user, reason, action), in the runs
// of its event's execution; a failure to keep it is logged, not returned:
// the run has happened, and the audit log has it.
func (s *server) recordRun(ctx context.Context, r rerunResult, by audit.Entry) {
	run := operatorRun{At: time.Now().UTC(), User: by.User, Reason: by.Reason, Action: r.Action, Of: r.ID, ID: r.ID, Via: by.Action}
	if r.Action == "copy" {
		run.ID = r.NewID
	}
	b, _ := json.Marshal(run)
	key := keyspace.IndexRuns(r.queue, stripetask.EventID(r.ID))
	p := s.rdb.Pipeline()
	p.RPush(ctx, key, b)
	p.LTrim(ctx, key, -maxRuns, -1)
	p.Expire(ctx, key, s.cfg.AuditRetention)
	if _, err := p.Exec(context.WithoutCancel(ctx)); err != nil {
		s.log.Warn("operator run not kept in its history", "task_id", r.ID, "err", err.Error())
	}
}

// runs are the operator runs of original and its copies, newest first.
func (s *server) runs(ctx context.Context, queue, original string) ([]operatorRun, error) {
	raw, err := s.rdb.LRange(ctx, keyspace.IndexRuns(queue, original), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	out := []operatorRun{}
	for _, b := range slices.Backward(raw) {
		var r operatorRun
		if json.Unmarshal([]byte(b), &r) == nil {
			r.URL = "/executions/" + url.PathEscape(r.ID)
			out = append(out, r)
		}
	}
	return out, nil
}
