package execindex

import (
	"context"
	"crypto/rand"
	_ "embed"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/keyspace"
)

// Filter selects executions. Every set field must match; the zero Filter
// matches every execution.
type Filter struct {
	// ID is an exact task ID: the execution with that ID and its re-run
	// copies. An event's first execution has the event ID as task ID.
	ID string
	// Type is an exact Stripe event type, e.g. "invoice.payment_failed".
	Type string
	// TypePrefix matches every type under it: "invoice" matches
	// invoice.paid and invoice.payment_failed, "customer.subscription"
	// matches customer.subscription.updated.
	TypePrefix string
	// Livemode is "true", "false", or "" for both.
	Livemode   string
	APIVersion string
	Customer   string
	Account    string
	// Ref is an object the event is about (its data.object, or an
	// invoice, charge, payment intent, subscription or checkout session
	// it names: in_…, ch_…, pi_…, sub_…, dp_…, cs_…) or the customer's
	// email, lower-cased (stripetask.NormalizeEmail).
	Ref string
	// Source is where the execution came from other than a webhook
	// delivery: stripetask.SourceRecovery for one a recovery stored. ""
	// matches every execution; the index has no set of webhook
	// deliveries.
	Source string
	// States keeps executions in any of these states (see States); empty
	// keeps every state.
	States []string
	// From and To bound the received time, both inclusive; a zero time is
	// an open bound.
	From, To time.Time
}

// Validate returns an error wrapping ErrInvalidFilter, naming the field,
// when f cannot be used.
func (f Filter) Validate() error {
	for _, s := range f.States {
		if !slices.Contains(States, s) {
			return fmt.Errorf("%w: state %q is not one of %s", ErrInvalidFilter, s, strings.Join(States, ", "))
		}
	}
	if f.Livemode != "" && f.Livemode != "true" && f.Livemode != "false" {
		return fmt.Errorf("%w: livemode must be true or false, got %q", ErrInvalidFilter, f.Livemode)
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		return fmt.Errorf("%w: to is before from", ErrInvalidFilter)
	}
	for name, v := range map[string]string{"id": f.ID, "type": f.Type, "type prefix": f.TypePrefix, "apiVersion": f.APIVersion, "customer": f.Customer, "account": f.Account, "ref": f.Ref, "source": f.Source} {
		if len(v) > 255 || strings.ContainsAny(v, "\n\r") {
			return fmt.Errorf("%w: %s is longer than 255 bytes or has a line break", ErrInvalidFilter, name)
		}
	}
	return nil
}

// keys returns the index sets f intersects, without the prefix. A type
// prefix is "prefix:<p>" (see typePrefix): no such set is written, and
// Query and Scan stand the union of the type sets under p in its place.
func (f Filter) keys() []string {
	var k []string
	add := func(name, v string) {
		if v != "" {
			k = append(k, name+":"+v)
		}
	}
	add("type", f.Type)
	add("prefix", f.typePrefix())
	add("livemode", f.Livemode)
	add("apiVersion", f.APIVersion)
	add("customer", f.Customer)
	add("account", f.Account)
	add("ref", f.Ref)
	add("source", f.Source)
	return k
}

// typePrefix returns f.TypePrefix without its "*" and its last ".":
// "invoice.*" is "invoice". The types under it are those that start with
// it and a dot.
func (f Filter) typePrefix() string {
	return strings.TrimSuffix(strings.TrimSuffix(f.TypePrefix, "*"), ".")
}

// Counts is the number of matching executions in each state.
type Counts map[string]int

// Item is one execution of a page.
type Item struct {
	ID         string
	ReceivedAt time.Time
	State      string
	// Queue is the asynq queue of the task; set by [Shards], empty from
	// [Index].
	Queue string
}

// Page is one page of a query's answer.
type Page struct {
	// Items are the executions of the page, newest first.
	Items []Item
	// Counts has, for every state, the executions that match the filter
	// apart from its States.
	Counts Counts
	// Total is the number of executions that match the whole filter.
	Total int
	// Dropped is the number of index entries whose task was gone; the query
	// removed them.
	Dropped int
	// Capped is true when the filter selects more than MaxExamined
	// entries (in its smallest set, within the time range) or the page
	// was not found among the first MaxExamined: only those were
	// examined, so Counts and Total are lower bounds and Items may be
	// short. Narrow the filter or the time range.
	Capped bool
	// KeptOnly is how many of Counts' archived executions only the
	// failure store keeps: asynq trimmed them from its archive, so a
	// re-run enqueues a copy of each instead of running it now.
	KeptOnly int
}

// Query returns the executions matching f, newest first, skipping offset
// and returning at most limit (capped at MaxLimit), with per-state counts.
// An offset above MaxOffset is an ErrInvalidFilter.
//
// One query examines at most MaxExamined index entries, the newest ones,
// so that no query holds Redis for long whatever the filter or the size
// of the index; past that, [Page.Capped] is set.
//
// It runs one Lua script that walks the smallest index set of the filter
// (or the explicit ID and its re-runs), checks the others with ZMSCORE and
// reads each task's state from asynq's task hash. Its cost is linear in
// the size of that smallest set. With no metadata filter and no time range
// it stops as soon as the page is full and takes its counts from asynq's
// per-state lists, so the unfiltered list stays cheap at any size.
func (ix *Index) Query(ctx context.Context, f Filter, offset, limit int) (Page, error) {
	if err := f.Validate(); err != nil {
		return Page{}, err
	}
	limit = min(max(limit, 1), MaxLimit)
	offset = max(offset, 0)
	if offset > MaxOffset {
		return Page{}, fmt.Errorf("%w: offset %d is past %d; narrow the filter or the time range", ErrInvalidFilter, offset, MaxOffset)
	}
	sufs := f.keys()
	full := len(sufs) > 0 || !f.From.IsZero() || !f.To.IsZero() || f.ID != ""
	keys := make([]string, 0, len(sufs)+1)
	for _, s := range sufs {
		if strings.HasPrefix(s, "prefix:") {
			// The script finds the type sets under the prefix in the
			// values set of types, which stands in its place.
			s = "values:" + FieldType
		}
		keys = append(keys, ix.pre+s)
	}
	if len(keys) == 0 {
		keys = append(keys, keyspace.IndexAll(ix.queue))
	}
	hi, lo := "+inf", "-inf"
	if !f.To.IsZero() {
		hi = strconv.FormatInt(f.To.UnixMilli(), 10)
	}
	if !f.From.IsZero() {
		lo = strconv.FormatInt(f.From.UnixMilli(), 10)
	}
	allOnly := "1"
	if full {
		allOnly = "0"
	}
	setops := "0"
	if ix.hasSetOps(ctx) {
		setops = "1"
	}
	res, err := queryScript.Run(ctx, ix.rdb, keys,
		ix.pre, keyspace.Queue(ix.queue), hi, lo, strings.Join(f.States, " "), offset, limit, allOnly, f.ID, setops, rand.Text(), ix.small, ix.examine,
		failures.KeyPrefix(ix.queue), f.typePrefix()).Slice()
	if err != nil {
		return Page{}, fmt.Errorf("execindex: query: %w", err)
	}
	return parsePage(res, f.States)
}

// hasSetOps reports whether the server has ZINTERCARD and ZRANGESTORE
// (Redis ≥ 7.0), which the large-set plan of Query needs. miniredis has
// neither; there Query always uses the walk.
func (ix *Index) hasSetOps(ctx context.Context) bool {
	ix.setopsOnce.Do(func() {
		ix.setops = ix.rdb.Do(ctx, "ZINTERCARD", 1, keyspace.IndexAll(ix.queue)).Err() == nil
	})
	return ix.setops
}

func parsePage(res []any, states []string) (Page, error) {
	const head = 10
	if len(res) < head || (len(res)-head)%3 != 0 {
		return Page{}, fmt.Errorf("execindex: query: unexpected answer of %d values", len(res))
	}
	p := Page{Counts: Counts{}}
	for i, s := range States {
		n, _ := res[i].(int64)
		p.Counts[s] = int(n)
	}
	dropped, _ := res[7].(int64)
	p.Dropped = int(dropped)
	capped, _ := res[8].(int64)
	p.Capped = capped == 1
	kept, _ := res[9].(int64)
	p.KeptOnly = int(kept)
	for s, n := range p.Counts {
		if len(states) == 0 || slices.Contains(states, s) {
			p.Total += n
		}
	}
	for i := head; i < len(res); i += 3 {
		id, _ := res[i].(string)
		score, _ := res[i+1].(string)
		state, _ := res[i+2].(string)
		ms, _ := strconv.ParseFloat(score, 64)
		p.Items = append(p.Items, Item{ID: id, ReceivedAt: time.UnixMilli(int64(ms)), State: state})
	}
	return p, nil
}

// IDs returns the task IDs and states of every execution matching f,
// newest first, up to max (at most MaxOffset). Bulk actions use it. A
// filter too broad to count (see [Page.Capped]) is an ErrInvalidFilter.
func (ix *Index) IDs(ctx context.Context, f Filter, max int) ([]Item, int, error) {
	var items []Item
	total := 0
	max = min(max, MaxOffset)
	for offset := 0; len(items) < max; {
		p, err := ix.Query(ctx, f, offset, min(MaxLimit, max-len(items)))
		if err != nil {
			return nil, 0, err
		}
		if p.Capped {
			return nil, 0, fmt.Errorf("%w: the filter selects more than %d executions; narrow it or the time range", ErrInvalidFilter, MaxExamined)
		}
		total = p.Total
		items = append(items, p.Items...)
		if len(p.Items) == 0 || offset+len(p.Items) >= p.Total {
			break
		}
		offset += len(p.Items)
	}
	return items, total, nil
}

// Prune drops every entry whose task asynq no longer holds: deleted by the
// janitor past its retention, trimmed from the archive, or deleted by an
// operator. It walks the whole index in chunks of 1,000 entries, one short
// script each, so it never blocks Redis for long; it returns how many
// entries it dropped.
func (ix *Index) Prune(ctx context.Context) (int, error) {
	const chunk = 1000
	start, dropped := int64(0), 0
	for {
		res, err := pruneScript.Run(ctx, ix.rdb, []string{keyspace.IndexAll(ix.queue)}, ix.pre, keyspace.Queue(ix.queue), start, chunk, failures.KeyPrefix(ix.queue)).Int64Slice()
		if err != nil {
			return dropped, fmt.Errorf("execindex: prune: %w", err)
		}
		next, seen, removed := res[0], res[1], res[2]
		dropped += int(removed)
		if seen < chunk {
			return dropped, nil
		}
		start = next
		if err := ctx.Err(); err != nil {
			return dropped, err
		}
	}
}

// The Lua of the scripts, one concern a file, each with its doc at its
// top: remove.lua starts every script; the query script is made of the
// others.
var (
	//go:embed remove.lua
	luaRemove string
	//go:embed query_lib.lua
	luaQueryLib string
	//go:embed query_small.lua
	luaQuerySmall string
	//go:embed query_large.lua
	luaQueryLarge string
	//go:embed query.lua
	luaQuery string
)

// removeScript: KEYS[1] = the keys hash; ARGV[1] = prefix, ARGV[2] = ID.
var removeScript = redis.NewScript(luaRemove + `
remove(ARGV[1], ARGV[2])
return 1
`)

// pruneScript walks ranks [start, start+count) of the all set.
// KEYS[1] = all; ARGV = prefix, asynq queue prefix, start, count,
// failure store prefix. An entry whose failure is kept stays.
// Returns {next start, entries seen, entries removed}.
var pruneScript = redis.NewScript(luaRemove + `
local pre, tpre, fpre = ARGV[1], ARGV[2] .. "t:", ARGV[5] .. "t:"
local start, count = tonumber(ARGV[3]), tonumber(ARGV[4])
local ids = redis.call("ZRANGE", KEYS[1], start, start + count - 1)
local removed = 0
for _, id in ipairs(ids) do
  if redis.call("EXISTS", tpre .. id) == 0 and redis.call("EXISTS", fpre .. id) == 0 then
    remove(pre, id)
    removed = removed + 1
  end
end
return {start + #ids - removed, #ids, removed}
`)

// queryScript is Query's walk: query.lua says what it takes and returns,
// and how it chooses between its two plans, query_small.lua and
// query_large.lua.
var queryScript = redis.NewScript(luaRemove + luaQueryLib + luaQuerySmall + luaQueryLarge + luaQuery)
