package audit

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Actions are every action the audit log records, in the order the
// Console lists their counts.
var Actions = []string{Rerun, BulkRerun, RerunSelected, Cancel, Delete, Discard, DeliveryRerun, DeliveryBulkRerun, DeliveryRerunSelected, Recovery, Asynqmon}

// Query is what a page of the audit log shows: the entries before Before
// ("": the newest), at most Limit, of User and Action when set ("": any),
// done from From to To (zero: the retention's start, now).
type Query struct {
	Before       string
	Limit        int
	User, Action string
	From, To     time.Time
}

// Filtered reports whether q narrows the log beyond paging.
func (q Query) Filtered() bool {
	return q.User != "" || q.Action != "" || !q.From.IsZero() || !q.To.IsZero()
}

// MaxScan is the most entries one read examines: counts past it are
// lower bounds (Page.Capped).
const MaxScan = 20_000

// scanBatch is how many entries one XREVRANGE reads.
const scanBatch = 1000

// ErrBadBefore refuses a before= that is not a stream entry ID.
var ErrBadBefore = errors.New("before must be the id of an audit entry, such as 1764480000000-0")

// ParseQuery reads a request for a page of the log: before= and limit=
// (1–500, default 100), user=, action= (one of Actions), and from= and
// to= (RFC 3339, a UTC time such as 2026-11-28T10:00, or unix seconds);
// any other parameter is an error.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{Limit: 100}
	for k := range v {
		switch k {
		case "before", "limit", "user", "action", "from", "to":
		default:
			return Query{}, fmt.Errorf("unknown parameter %q (parameters are before, limit, user, action, from, to)", k)
		}
	}
	q.Before = v.Get("before")
	if q.Before != "" {
		ms, seq, ok := strings.Cut(q.Before, "-")
		if _, err := strconv.ParseUint(ms, 10, 64); err != nil || !ok {
			return Query{}, ErrBadBefore
		}
		if _, err := strconv.ParseUint(seq, 10, 64); err != nil {
			return Query{}, ErrBadBefore
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			return Query{}, errors.New("limit must be 1 to 500")
		}
		q.Limit = n
	}
	q.User = v.Get("user")
	q.Action = v.Get("action")
	if q.Action != "" && !slices.Contains(Actions, q.Action) {
		return Query{}, fmt.Errorf("action must be one of %s", strings.Join(Actions, ", "))
	}
	var err error
	if q.From, err = parseTime("from", v.Get("from")); err != nil {
		return Query{}, err
	}
	if q.To, err = parseTime("to", v.Get("to")); err != nil {
		return Query{}, err
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return Query{}, errors.New("to is before from")
	}
	return q, nil
}

// parseTime reads a time parameter: RFC 3339, a UTC time to the minute
// or second, or unix seconds; "" is the zero time.
func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%s must be a time such as 2026-11-28T10:00 (UTC), RFC 3339 or unix seconds", name)
}

// Read returns a page of the log for q, newest first, within the
// retention, with the counts of q's range: every action's (of q's user),
// and every user's. Each of its two scans, the counts and the page,
// examines at most MaxScan entries: past it the counts are lower bounds
// (Capped), and the page ends where the scan stopped (Next goes on).
func (l *Log) Read(ctx context.Context, q Query) (Page, error) {
	lo := time.Now().Add(-l.retention)
	if q.From.After(lo) {
		lo = q.From
	}
	loID := strconv.FormatInt(lo.UnixMilli(), 10)
	hi := "+"
	if !q.To.IsZero() {
		hi = strconv.FormatInt(q.To.UnixMilli(), 10)
	}
	p := Page{Entries: []Entry{}, Retention: Days(l.retention), Counts: map[string]int{}, Users: map[string]int{}}
	for _, a := range Actions {
		p.Counts[a] = 0
	}
	capped, err := l.scan(ctx, hi, loID, func(m redis.XMessage) bool {
		user, _ := m.Values["user"].(string)
		action, _ := m.Values["action"].(string)
		p.Users[user]++
		if q.User == "" || user == q.User {
			p.Counts[action]++
		}
		return true
	})
	if err != nil {
		return Page{}, err
	}
	p.Capped = capped
	if q.Before != "" && (hi == "+" || idBefore(q.Before, hi)) {
		hi = "(" + q.Before
	}
	var last string
	capped, err = l.scan(ctx, hi, loID, func(m redis.XMessage) bool {
		last = m.ID
		e := entryOf(m)
		if q.User != "" && e.User != q.User || q.Action != "" && e.Action != q.Action {
			return true
		}
		if len(p.Entries) == q.Limit {
			p.Next = p.Entries[q.Limit-1].ID
			return false
		}
		p.Entries = append(p.Entries, e)
		return true
	})
	if err != nil {
		return Page{}, err
	}
	if capped && p.Next == "" {
		p.Next = last
	}
	return p, nil
}

// scan calls fn on the entries from hi down to lo (XREVRANGE bounds),
// newest first, until fn returns false or MaxScan entries were examined,
// which it reports.
func (l *Log) scan(ctx context.Context, hi, lo string, fn func(redis.XMessage) bool) (capped bool, err error) {
	for examined := 0; examined < MaxScan; {
		msgs, err := l.rdb.XRevRangeN(ctx, Key, hi, lo, scanBatch).Result()
		if err != nil {
			return false, fmt.Errorf("audit: %w", err)
		}
		for _, m := range msgs {
			examined++
			if !fn(m) {
				return false, nil
			}
		}
		if len(msgs) < scanBatch {
			return false, nil
		}
		hi = "(" + msgs[len(msgs)-1].ID
	}
	return true, nil
}

// idBefore reports whether stream entry ID a is older than b.
func idBefore(a, b string) bool {
	ams, aseq, _ := strings.Cut(a, "-")
	bms, bseq, _ := strings.Cut(b, "-")
	am, _ := strconv.ParseUint(ams, 10, 64)
	bm, _ := strconv.ParseUint(bms, 10, 64)
	if am != bm {
		return am < bm
	}
	as, _ := strconv.ParseUint(aseq, 10, 64)
	bs, _ := strconv.ParseUint(bseq, 10, 64)
	return as < bs
}
