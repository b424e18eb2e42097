// Package recovery finds the Stripe events stripeq never stored, by
// listing them with Stripe's Events API, and stores the missing ones
// exactly as a webhook delivery would (see [Store]).
//
// Stripe retries a failed delivery for three days and never sends the
// events created while an endpoint is disabled. A recovery lists the
// events of a window (for the permitted types, STRIPE_EVENTS), on the
// platform and every connected account or on one account, and counts:
//
//   - listed: the events Stripe returned;
//   - missing: those with neither a task nor a duplicate marker;
//   - enqueued: those this recovery stored (0 in a dry run).
//
// It never re-enqueues an event that was processed and has aged out of
// its task and its marker: a window may not start earlier than
// DEDUPE_WINDOW ago ([ErrTooOld]), and an event that ages past it while
// the recovery runs is left alone (skipped).
//
// The dashboard runs recoveries (POST /api/recoveries) and keeps their
// records ([Records]).
//
// Internal to this module, with no compatibility promise: a program
// outside it should not import it (pkg/README.md lists the packages).
package recovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/taskenv"
)

// Errors of [Recoverer.Check] and [ParseTime]; each is a mistake of the
// request, not of Stripe or Redis.
var (
	// ErrWindow means a window's bounds are malformed or out of order.
	ErrWindow = errors.New("invalid window")
	// ErrTooOld means a window starts before what stripeq can vouch for:
	// an event created then may have been processed and lost both its
	// task and its duplicate marker.
	ErrTooOld = errors.New("window reaches past DEDUPE_WINDOW")
)

// margin keeps a window's start this far inside DEDUPE_WINDOW, so that
// its oldest events still have their markers while the recovery runs.
const margin = 10 * time.Minute

// Request is one recovery to run.
type Request struct {
	Since, Until time.Time
	// Account, when set, limits the recovery to that connected account's
	// events; else the platform's and every connected account's.
	Account string
	// DryRun counts without storing, and keeps the first
	// [Recoverer.PreviewLimit] missing events in Progress.Events.
	DryRun bool
	// ID is the recovery's record ID ("rec_…"), carried by each task it
	// stores (stripetask.HeaderRecoveryID); "" for none.
	ID string
	// Only, when not nil, binds the run to a dry run's events: it stores
	// only these (by ID), skipping those stripeq got meanwhile
	// (Progress.AlreadyStored) and leaving alone any other missing event
	// (Progress.NotPreviewed). It lists only the accounts they name.
	Only []Event
}

// MaxPreviewEvents is the default of [Recoverer.PreviewLimit]: a dry run
// keeps the first 1,000 missing events it finds (about 100 KB in its
// record), and counts the rest.
const MaxPreviewEvents = 1000

// Progress is what a recovery has done so far; the final one is its
// result.
type Progress struct {
	// Accounts is the number of accounts to list (the platform counts as
	// one), AccountsDone those finished.
	Accounts     int `json:"accounts"`
	AccountsDone int `json:"accounts_done"`
	// Pages is the number of pages Stripe answered.
	Pages    int `json:"pages"`
	Listed   int `json:"listed"`
	Missing  int `json:"missing"`
	Enqueued int `json:"enqueued"`
	// Skipped are missing events not stored because they aged past
	// DEDUPE_WINDOW during the recovery.
	Skipped int `json:"skipped"`
	// AlreadyStored, NotPreviewed and NotListed count, in a run bound to
	// a dry run (Request.Only), the previewed events stripeq got
	// meanwhile (a webhook delivery or another recovery stored them),
	// the missing events Stripe listed that the preview did not (left
	// alone), and the previewed events Stripe no longer listed.
	AlreadyStored int `json:"already_stored,omitempty"`
	NotPreviewed  int `json:"not_previewed,omitempty"`
	NotListed     int `json:"not_listed,omitempty"`
	// MissingByType and MissingByAccount break missing down; the
	// platform's account is "".
	MissingByType    map[string]int `json:"missing_by_type"`
	MissingByAccount map[string]int `json:"missing_by_account"`
	// Events are, in a dry run, the first PreviewLimit missing events, in
	// the order Stripe listed them; Missing counts them all. The record
	// keeps them apart ([Record].Events).
	Events []Event `json:"-"`
}

// Recoverer runs recoveries.
type Recoverer struct {
	Lister *Lister
	Store  *Store
	// Events are the permitted types (STRIPE_EVENTS, as
	// taskenv.Events reads them).
	Events []string
	// DedupeWindow is DEDUPE_WINDOW: it must be the api's.
	DedupeWindow time.Duration
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// PreviewLimit is the most missing events a dry run keeps
	// (Progress.Events). If zero, MaxPreviewEvents (1,000).
	PreviewLimit int
}

func (r *Recoverer) previewLimit() int {
	if r.PreviewLimit > 0 {
		return r.PreviewLimit
	}
	return MaxPreviewEvents
}

func (r *Recoverer) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Earliest returns the earliest start of a window now: DEDUPE_WINDOW ago,
// plus a margin of 10 minutes.
func (r *Recoverer) Earliest() time.Time {
	return r.now().Add(-r.DedupeWindow + margin)
}

// Check checks req's window and returns it with Until set (to now when
// zero or later): ErrWindow when Since is zero or not before Until,
// ErrTooOld when Since is before [Recoverer.Earliest], and ErrWindow when
// Account is not a Stripe account ID.
func (r *Recoverer) Check(req Request) (Request, error) {
	now := r.now()
	if req.Until.IsZero() || req.Until.After(now) {
		req.Until = now
	}
	switch {
	case req.Since.IsZero():
		return req, fmt.Errorf("%w: since is required", ErrWindow)
	case !req.Since.Before(req.Until):
		return req, fmt.Errorf("%w: since (%s) must be before until (%s)", ErrWindow, req.Since.UTC().Format(time.RFC3339), req.Until.UTC().Format(time.RFC3339))
	case req.Since.Before(r.Earliest()):
		return req, fmt.Errorf("%w: since may be at most %v ago (DEDUPE_WINDOW %v less a margin of %v): stripeq cannot tell whether an older event was processed; raise DEDUPE_WINDOW on the api and the dashboard (up to Stripe's 30 days) to recover further back",
			ErrTooOld, (r.DedupeWindow - margin).String(), r.DedupeWindow, margin)
	case req.Account != "" && (!stripetask.ValidID(req.Account) || len(req.Account) < 6 || req.Account[:5] != "acct_"):
		return req, fmt.Errorf("%w: account must be a Stripe account ID (acct_…)", ErrWindow)
	}
	return req, nil
}

// typeChunks splits the permitted types into filters of at most MaxTypes:
// one filter of none (every type) for "*".
func (r *Recoverer) typeChunks() [][]string {
	if slices.Contains(r.Events, taskenv.AllEvents) {
		return [][]string{nil}
	}
	return slices.Collect(slices.Chunk(r.Events, MaxTypes))
}

// Run runs the recovery req (checked by [Recoverer.Check]), calling
// progress after each page. It returns the final progress and the first
// error of Stripe or Redis.
func (r *Recoverer) Run(ctx context.Context, req Request, progress func(Progress)) (Progress, error) {
	p := Progress{MissingByType: map[string]int{}, MissingByAccount: map[string]int{}}
	req, err := r.Check(req)
	if err != nil {
		return p, err
	}
	report := func() {
		if progress != nil {
			progress(p)
		}
	}
	accounts := []string{req.Account}
	var only map[string]bool
	if req.Only != nil {
		// A bound run lists only the accounts its events were listed on.
		only = make(map[string]bool, len(req.Only))
		accounts = accounts[:0]
		for _, e := range req.Only {
			only[e.ID] = true
			if !slices.Contains(accounts, e.Account) {
				accounts = append(accounts, e.Account)
			}
		}
		slices.Sort(accounts)
	} else if req.Account == "" {
		connected, err := r.Lister.Accounts(ctx)
		if err != nil {
			return p, err
		}
		accounts = append(accounts, connected...)
	}
	p.Accounts = len(accounts)
	report()
	permits := taskenv.Permits(r.Events)
	for _, account := range accounts {
		for _, types := range r.typeChunks() {
			err := r.Lister.Events(ctx, account, types, req.Since.Unix(), req.Until.Unix(), func(events []json.RawMessage) error {
				p.Pages++
				for _, body := range events {
					if err := r.one(ctx, req, account, body, permits, only, &p); err != nil {
						return err
					}
				}
				report()
				return nil
			})
			if err != nil {
				return p, err
			}
		}
		p.AccountsDone++
		report()
	}
	if only != nil {
		// What one met is deleted from only: the rest Stripe no longer lists.
		p.NotListed = len(only)
	}
	return p, nil
}

// one counts, and unless a dry run stores, one listed event; with only
// (a bound run) only one of those, deleting it from only.
func (r *Recoverer) one(ctx context.Context, req Request, account string, body []byte, permits func(string) bool, only map[string]bool, p *Progress) error {
	m, err := stripetask.Decode(body)
	if err != nil {
		return fmt.Errorf("an event Stripe listed: %w", err)
	}
	if !permits(m.Type) {
		return nil // with "*" none is filtered out; else Stripe filtered already
	}
	if m.Account == "" {
		// A connected account's event, as its webhook delivery names it.
		m.Account = account
	}
	p.Listed++
	known, err := r.Store.Known(ctx, m)
	if err != nil {
		return err
	}
	previewed := only == nil || only[m.ID]
	if only != nil && previewed {
		delete(only, m.ID)
	}
	switch {
	case known && only != nil && previewed:
		p.AlreadyStored++
		return nil
	case known:
		return nil
	case !previewed:
		p.NotPreviewed++
		return nil
	}
	p.Missing++
	p.MissingByType[m.Type]++
	p.MissingByAccount[account]++
	if req.DryRun {
		if len(p.Events) < r.previewLimit() {
			p.Events = append(p.Events, Event{ID: m.ID, Type: m.Type, Created: time.Unix(m.Created, 0).UTC(), Account: account})
		}
		return nil
	}
	m.RecoveryID = req.ID
	if !time.Unix(m.Created, 0).After(r.now().Add(-r.DedupeWindow)) {
		p.Skipped++
		return nil
	}
	stored, err := r.Store.Put(ctx, body, m)
	if stored {
		p.Enqueued++
	}
	return err
}
