package execindex

import (
	"context"
	"crypto/rand"
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
	for name, v := range map[string]string{"id": f.ID, "type": f.Type, "type prefix": f.TypePrefix, "apiVersion": f.APIVersion, "customer": f.Customer, "account": f.Account, "ref": f.Ref} {
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
	const head = 9
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

// Lua shared by the scripts: remove(pre, id) drops id from every index key
// that holds it, and its re-run history.
const luaRemove = `
local keyfams = {m = "livemode:", v = "apiVersion:", c = "customer:", a = "account:", r = "ref:", R = "reruns:", k = ""}
local function remove(pre, id)
  local sufs = redis.call("HGET", pre .. "keys", id)
  if sufs then
    if string.sub(sufs, 1, 1) == "=" then
      -- "=" then "<tag><length>:<value>" repeated (joinKeys)
      local i = 2
      while i <= #sufs do
        local tag = string.sub(sufs, i, i)
        local colon = string.find(sufs, ":", i + 1, true)
        local n = colon and tonumber(string.sub(sufs, i + 1, colon - 1))
        if not n then break end
        local v = string.sub(sufs, colon + 1, colon + n)
        if tag == "t" then
          redis.call("ZREM", pre .. "type:" .. v, id)
          local dot = string.find(v, ".", 1, true)
          while dot do
            redis.call("ZREM", pre .. "prefix:" .. string.sub(v, 1, dot - 1), id)
            dot = string.find(v, ".", dot + 1, true)
          end
        elseif keyfams[tag] then
          redis.call("ZREM", pre .. keyfams[tag] .. v, id)
        end
        i = colon + n + 1
      end
    elseif string.find(sufs, "^%d") then
      -- "<length>:<key>" repeated (joinKeys)
      local i = 1
      while i <= #sufs do
        local colon = string.find(sufs, ":", i, true)
        local n = colon and tonumber(string.sub(sufs, i, colon - 1))
        if not n then break end
        redis.call("ZREM", pre .. string.sub(sufs, colon + 1, colon + n), id)
        i = colon + n + 1
      end
    else
      -- written before joinKeys: keys joined by "\n"
      for suf in string.gmatch(sufs, "[^\n]+") do redis.call("ZREM", pre .. suf, id) end
    end
    redis.call("HDEL", pre .. "keys", id)
  end
  redis.call("ZREM", pre .. "all", id)
  redis.call("DEL", pre .. "reruns:" .. id)
  redis.call("HDEL", pre .. "rerunseq", id)
end
`

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

// queryScript is Query's walk.
//
// KEYS: the index sets to intersect (at least one); with a type prefix,
// the values set of types stands where the prefix's set would.
// ARGV: [1] index prefix, [2] asynq queue prefix "asynq:{q}:", [3] max
// score or "+inf", [4] min score or "-inf", [5] wanted states, space
// separated ("" for any), [6] offset, [7] limit, [8] "1" when KEYS is
// only the all set and no time range applies, [9] an exact ID ("" for
// none), [10] "1" when the server has ZINTERCARD and ZRANGESTORE (Redis ≥
// 7.0), [11] a random suffix for temporary keys, [12] SMALL, [13] CAP:
// the most index entries the script examines (see MaxExamined), [14] the
// failure store's prefix of the queue (pkg/failures), [15] a type prefix
// ("" for none).
//
// A type prefix has no set: it is the union of the type sets of the types
// under it, which the values set of types lists. Every entry, whether
// written with prefix sets by an older release or without them, is in its
// type set, so the union answers for both. The union is a list of keys
// until a plan needs one set: when it drives, the script stores the
// newest CAP of it in range (what a plan examines) in a temporary key,
// copying from each type set only what is newer than the CAP-th newest
// entry (found by a binary search on the received time with ZCOUNT); when
// it is checked against, a walk looks IDs up in each type set, and the
// large plan intersects with each type set and unites the parts. Both
// copy more than a prefix set did. Over 100,000 executions (on a loaded
// 2-core machine) a prefix that drives takes about as long as its set did
// (invoice.* over 24 hours: 18-21 ms against 21-24 ms); a prefix checked
// against a smaller filter (customer.* and livemode=false), or a state
// filter over a prefix of 19,000 entries, up to about twice as long
// (72-134 ms against 35-70 ms). The prefix sets cost 189 bytes an event.
//
// A task asynq no longer holds whose failure the failure store keeps
// (trimmed from asynq's archive) is archived; the archived count is of
// asynq's archive and the failure store together.
//
// Two plans:
//   - small: walk the smallest set (or the exact ID and its re-runs)
//     newest first, check the other sets with ZMSCORE and read each
//     task's state with HGET. Counts are exact. Used when the smallest set
//     holds at most SMALL entries, or on servers without ZINTERCARD.
//   - large: intersect in C (ZINTERSTORE, ZRANGESTORE) into a temporary
//     set, count per state with ZINTERCARD against asynq's state sets, and
//     find the page by walking newest first until it is full, or, when
//     the wanted states hold few tasks, by intersecting them directly.
//
// Every plan examines at most CAP entries, the newest in range: the large
// plan copies only the newest CAP of its driving set (ZRANGESTORE … LIMIT)
// before intersecting, and every walk stops after CAP entries. When that
// leaves entries out, capped is 1 and the counts are lower bounds.
//
// Returns {pending, active, scheduled, retry, archived, completed,
// aggregating, dropped, capped, id, score, state, id, score, state, …}.
var queryScript = redis.NewScript(luaRemove + `
local SMALL = tonumber(ARGV[12])
local CAP = tonumber(ARGV[13])
local capped, examined = 0, 0
local skipRanks = 0 -- ranks a walk skips unread: set when every row matches
local pre, qpre = ARGV[1], ARGV[2]
local tpre = qpre .. "t:"
local hi, lo = ARGV[3], ARGV[4]
local want, wantList, anyState = {}, {}, true
for s in string.gmatch(ARGV[5], "%S+") do want[s] = true; wantList[#wantList + 1] = s; anyState = false end
local offset, limit = tonumber(ARGV[6]), tonumber(ARGV[7])
local allOnly = ARGV[8] == "1"
local exact = ARGV[9]
local setops = ARGV[10] == "1"
local tmp = pre .. "tmp:" .. ARGV[11]
local ZSTATES = {"scheduled", "retry", "archived", "completed"}
local fall, frec = ARGV[14] .. "all", ARGV[14] .. "t:"
local prefix = ARGV[15]

-- keys are KEYS, with the type prefix's place holding the list of its
-- type sets (a table) or, when it has one type, that set.
local keys, temps = {}, {}
for k = 1, #KEYS do
  keys[k] = KEYS[k]
  if prefix ~= "" and KEYS[k] == pre .. "values:type" then
    local u, pp = {}, prefix .. "."
    for _, t in ipairs(redis.call("SMEMBERS", KEYS[k])) do
      if string.sub(t, 1, #pp) == pp then u[#u + 1] = pre .. "type:" .. t end
    end
    table.sort(u)
    if #u == 0 then
      keys[k] = tmp .. ":none" -- never written: empty
    elseif #u == 1 then
      keys[k] = u[1]
    else
      keys[k] = u
    end
  end
end

-- card is the size of a key or of a union of type sets (which are
-- disjoint: an entry has one type).
local function card(k)
  if type(k) ~= "table" then return redis.call("ZCARD", k) end
  local n = 0
  for _, t in ipairs(k) do n = n + redis.call("ZCARD", t) end
  return n
end

-- inKey is ZMSCORE of ids in a key or a union of type sets: a score, or
-- false, per ID.
local function inKey(k, ids)
  if type(k) ~= "table" then return redis.call("ZMSCORE", k, unpack(ids)) end
  local s, rest, at = {}, ids, {}
  for i = 1, #ids do s[i] = false; at[i] = i end
  for _, t in ipairs(k) do
    if #rest == 0 then break end
    local r = redis.call("ZMSCORE", t, unpack(rest))
    local nrest, nat = {}, {}
    for i = 1, #rest do
      if r[i] then s[at[i]] = r[i] else nrest[#nrest + 1] = rest[i]; nat[#nat + 1] = at[i] end
    end
    rest, at = nrest, nat
  end
  return s
end

-- unionCapped is 1 when a driving union held more than CAP entries in
-- range: only its newest CAP were stored (see store).
local unionCapped = 0

-- count is the number of entries of the union u with a score in
-- [from, hi].
local function count(u, from)
  local n = 0
  for _, t in ipairs(u) do n = n + redis.call("ZCOUNT", t, from, hi) end
  return n
end

-- newest returns a score from which the union u holds at least its
-- newest CAP entries in range, and few more: scores are unix ms, so a
-- binary search over them with count (about 30 steps over 3 days) finds
-- the highest such whole number.
local function newest(u)
  local a, b = math.huge, -math.huge
  for _, t in ipairs(u) do
    local first = redis.call("ZRANGEBYSCORE", t, lo, hi, "WITHSCORES", "LIMIT", 0, 1)
    local last = redis.call("ZREVRANGEBYSCORE", t, hi, lo, "WITHSCORES", "LIMIT", 0, 1)
    if #first > 0 then a = math.min(a, math.floor(tonumber(first[2]))) end
    if #last > 0 then b = math.max(b, math.floor(tonumber(last[2]))) end
  end
  while a < b do
    local m = math.floor((a + b + 1) / 2)
    if count(u, string.format("%.0f", m)) >= CAP then a = m else b = m - 1 end
  end
  return string.format("%.0f", a)
end

-- store writes the newest CAP entries in range of the union u into a
-- temporary key and returns it: what a plan driven by u examines.
local stored
local function store(u)
  local dst = tmp .. ":u"
  temps[#temps + 1] = dst
  stored = dst
  local from = lo
  if count(u, lo) > CAP then
    unionCapped = 1
    from = newest(u)
  end
  local args = {"ZUNIONSTORE", dst, #u}
  if setops then
    for i, t in ipairs(u) do
      local part = tmp .. ":u" .. i
      redis.call("ZRANGESTORE", part, t, hi, from, "BYSCORE", "REV", "LIMIT", 0, CAP)
      args[#args + 1] = part
    end
  else
    for _, t in ipairs(u) do args[#args + 1] = t end
  end
  args[#args + 1] = "AGGREGATE"
  args[#args + 1] = "MIN"
  redis.call(unpack(args))
  if setops then
    redis.call("DEL", unpack(args, 4, 3 + #u))
  else
    if hi ~= "+inf" then redis.call("ZREMRANGEBYSCORE", dst, "(" .. hi, "+inf") end
    if from ~= "-inf" then redis.call("ZREMRANGEBYSCORE", dst, "-inf", "(" .. from) end
  end
  local n = redis.call("ZCARD", dst)
  if n > CAP then redis.call("ZREMRANGEBYRANK", dst, 0, n - CAP - 1) end
  return dst
end

-- state reads a task's state: asynq's, or archived when only the failure
-- store keeps it.
local function state(id)
  local st = redis.call("HGET", tpre .. id, "state")
  if not st and redis.call("EXISTS", frec .. id) == 1 then st = "archived" end
  return st
end

-- archivedIn counts the archived tasks among set (nil: all): in asynq's
-- archive or in the failure store.
local function archivedIn(set)
  local A, F = qpre .. "archived", fall
  if setops then
    if set then
      return redis.call("ZINTERCARD", 2, set, A) + redis.call("ZINTERCARD", 2, set, F) - redis.call("ZINTERCARD", 3, set, A, F)
    end
    return redis.call("ZCARD", A) + redis.call("ZCARD", F) - redis.call("ZINTERCARD", 2, A, F)
  end
  -- No ZINTERCARD (miniredis): the archive holds at most 10,000.
  local n = redis.call("ZCARD", F)
  local size = redis.call("ZCARD", A)
  for i = 0, size - 1, 1000 do
    local ids = redis.call("ZRANGE", A, i, i + 999)
    if #ids > 0 then
      for _, v in ipairs(redis.call("ZMSCORE", F, unpack(ids))) do
        if not v then n = n + 1 end
      end
    end
  end
  return n
end

local counts = {pending = 0, active = 0, scheduled = 0, retry = 0, archived = 0, completed = 0, aggregating = 0}
local page, matched, missing, stop = {}, 0, {}, false
local wantedTotal = -1 -- when known, the walk stops once it has seen them all

local function asynqCounts()
  counts.pending = redis.call("LLEN", qpre .. "pending")
  counts.active = redis.call("LLEN", qpre .. "active")
  for _, s in ipairs(ZSTATES) do counts[s] = redis.call("ZCARD", qpre .. s) end
  counts.archived = archivedIn(nil)
end

local function total()
  local n = 0
  for s, c in pairs(counts) do
    if anyState or want[s] then n = n + c end
  end
  return n
end

-- take records one matching row; it returns true when the page is full
-- or every wanted row has been seen.
local function take(id, score, st)
  matched = matched + 1
  if matched > offset and #page < limit * 3 then
    page[#page + 1] = id
    page[#page + 1] = score
    page[#page + 1] = st
  end
  return #page >= limit * 3 or (wantedTotal >= 0 and matched >= wantedTotal)
end

-- visit checks ids against every key but skip, reads their states, counts
-- them when count is true, and takes the matching ones.
local function visit(ids, scores, keys, skip, count)
  local ok = {}
  for i = 1, #ids do ok[i] = true end
  for k = 1, #keys do
    if k ~= skip then
      local s = inKey(keys[k], ids)
      for i = 1, #ids do
        if not s[i] then ok[i] = false end
      end
    end
  end
  for i = 1, #ids do
    if ok[i] then
      local st = state(ids[i])
      if not st then
        missing[#missing + 1] = ids[i]
      else
        if count then counts[st] = (counts[st] or 0) + 1 end
        if (anyState or want[st]) and not stop then
          if take(ids[i], scores[i], st) and not count then stop = true; return end
        end
      end
    end
  end
end

-- walk visits keys[skip] newest first between lo and hi, in chunks, until stop.
local function walk(keys, skip, count)
  local key = keys[skip]
  local first = 0
  if hi ~= "+inf" then first = redis.call("ZCOUNT", key, "(" .. hi, "+inf") end
  local last = first + redis.call("ZCOUNT", key, lo, hi) - 1
  local i = first + skipRanks
  matched = matched + skipRanks
  while i <= last and not stop do
    if examined >= CAP then capped = 1; break end
    local j = math.min(i + 499, last, i + CAP - examined - 1)
    examined = examined + (j - i + 1)
    local r = redis.call("ZREVRANGE", key, i, j, "WITHSCORES")
    if #r == 0 then break end
    local ids, scores = {}, {}
    for x = 1, #r, 2 do
      ids[#ids + 1] = r[x]
      scores[#scores + 1] = r[x + 1]
    end
    visit(ids, scores, keys, skip, count)
    i = j + 1
  end
end

local function bound(s)
  if s == "+inf" then return math.huge end
  if s == "-inf" then return -math.huge end
  return tonumber(s)
end

-- The smallest set drives.
local driver, size = 1, -1
for k = 1, #keys do
  local n = card(keys[k])
  if size < 0 or n < size then driver, size = k, n end
end
if exact == "" and type(keys[driver]) == "table" then keys[driver] = store(keys[driver]) end

if exact ~= "" then
  -- The execution and its re-runs, newest first.
  local cand = {exact}
  for _, id in ipairs(redis.call("ZRANGE", pre .. "reruns:" .. exact, 0, -1)) do cand[#cand + 1] = id end
  local sc = redis.call("ZMSCORE", pre .. "all", unpack(cand))
  local rows = {}
  local h, l = bound(hi), bound(lo)
  for i = 1, #cand do
    if sc[i] then
      local n = tonumber(sc[i])
      if n >= l and n <= h then rows[#rows + 1] = {cand[i], sc[i], n} end
    end
  end
  table.sort(rows, function(a, b) return a[3] > b[3] end)
  local ids, scores = {}, {}
  for i = 1, #rows do ids[i] = rows[i][1]; scores[i] = rows[i][2] end
  if #ids > 0 then visit(ids, scores, keys, 0, true) end
elseif allOnly and not setops then
  asynqCounts()
  wantedTotal = total()
  if wantedTotal > offset then walk(keys, 1, false) end
elseif size <= SMALL or not setops then
  walk(keys, driver, true)
else
  -- Large: build the base set B in C.
  local B = keys[1]
  local others, unions = {}, {}
  for k = 1, #keys do
    if k ~= driver then
      if type(keys[k]) == "table" then unions[#unions + 1] = keys[k] else others[#others + 1] = keys[k] end
    end
  end
  local function intersect(first)
    if #others > 0 then
      local args = {"ZINTERSTORE", tmp, #others + 1, first}
      for _, k in ipairs(others) do args[#args + 1] = k end
      args[#args + 1] = "WEIGHTS"
      args[#args + 1] = 1
      for _ = 1, #others do args[#args + 1] = 0 end
      redis.call(unpack(args))
      first = tmp
    end
    -- A union of type sets: intersect with each, and unite the parts.
    for _, u in ipairs(unions) do
      local args = {"ZUNIONSTORE", tmp, #u}
      for i, t in ipairs(u) do
        local part = tmp .. ":i" .. i
        redis.call("ZINTERSTORE", part, 2, first, t, "WEIGHTS", 1, 0)
        args[#args + 1] = part
      end
      args[#args + 1] = "AGGREGATE"
      args[#args + 1] = "MAX"
      redis.call(unpack(args))
      redis.call("DEL", unpack(args, 4, 3 + #u))
      first = tmp
    end
  end
  if allOnly then
    B = keys[driver]
  elseif keys[driver] == stored then
    -- A union of type sets, stored: its newest CAP in range already.
    B = keys[driver]
    if #others + #unions > 0 then
      intersect(B)
      B = tmp
    end
  else
    -- Only the newest CAP entries of the driving set in range take part.
    redis.call("ZRANGESTORE", tmp, keys[driver], hi, lo, "BYSCORE", "REV", "LIMIT", 0, CAP)
    if redis.call("ZCOUNT", keys[driver], lo, hi) > CAP then capped = 1 end
    intersect(tmp)
    B = tmp
  end
  if allOnly then
    asynqCounts()
  else
    local n = redis.call("ZCARD", B)
    local rest = n
    for _, s in ipairs(ZSTATES) do
      if s == "archived" then
        counts[s] = archivedIn(B)
      else
        counts[s] = redis.call("ZINTERCARD", 2, B, qpre .. s)
      end
      rest = rest - counts[s]
    end
    local active = redis.call("LRANGE", qpre .. "active", 0, -1)
    if #active > 0 then
      for _, v in ipairs(redis.call("ZMSCORE", B, unpack(active))) do
        if v then counts.active = counts.active + 1 end
      end
    end
    -- The rest is pending, or an entry whose task is gone and not yet
    -- pruned.
    counts.pending = math.max(rest - counts.active, 0)
  end
  wantedTotal = total()
  if wantedTotal > offset then
    local zsetOnly = not anyState and not want.pending and not want.active
    if zsetOnly and wantedTotal <= SMALL then
      -- Few wanted rows: intersect the wanted states with B, keeping B's
      -- received times, and read the page off that.
      local parts = {}
      local sources = {}
      for _, s in ipairs(wantList) do
        sources[#sources + 1] = qpre .. s
        if s == "archived" then sources[#sources + 1] = fall end
      end
      for i, src in ipairs(sources) do
        local part = tmp .. ":" .. i
        redis.call("ZINTERSTORE", part, 2, B, src, "WEIGHTS", 1, 0)
        parts[#parts + 1] = part
      end
      local w = parts[1]
      if #parts > 1 then
        w = tmp .. ":w"
        local args = {"ZUNIONSTORE", w, #parts}
        for _, p in ipairs(parts) do args[#args + 1] = p end
        args[#args + 1] = "AGGREGATE"
        args[#args + 1] = "MAX"
        redis.call(unpack(args))
        parts[#parts + 1] = w
      end
      local r = redis.call("ZREVRANGE", w, offset, offset + limit - 1, "WITHSCORES")
      for x = 1, #r, 2 do
        local st = state(r[x])
        if st then
          page[#page + 1] = r[x]
          page[#page + 1] = r[x + 1]
          page[#page + 1] = st
        else
          missing[#missing + 1] = r[x]
        end
      end
      redis.call("DEL", unpack(parts))
    else
      -- Walk B newest first until the page is full. B is already the
      -- intersection, so no other key needs checking.
      if B == tmp then hi, lo = "+inf", "-inf" end
      -- B is the intersection, so with any state every entry matches:
      -- skip to the page instead of reading each state before it. (An
      -- entry whose task is gone and not yet pruned shifts the page.)
      if anyState then skipRanks = offset end
      walk({B}, 1, false)
    end
  end
  if B == tmp then redis.call("DEL", tmp) end
end

if #temps > 0 then redis.call("DEL", unpack(temps)) end
capped = math.max(capped, unionCapped)
for _, id in ipairs(missing) do remove(pre, id) end
local out = {counts.pending, counts.active, counts.scheduled, counts.retry, counts.archived, counts.completed, counts.aggregating, #missing, capped}
for _, v in ipairs(page) do out[#out + 1] = v end
return out
`)
