-- query_lib.lua: the query script's arguments, read into locals, and what
-- both plans share (see query.lua): set sizes and lookups over a key or a
-- union of type sets, storing a union's newest CAP entries, a task's state,
-- the archived count, the counts, and the walk that visits a set newest
-- first.
--
-- A type prefix has no set: it is the union of the type sets of the types
-- under it, which the values set of types lists. Every entry, whether
-- written with prefix sets by an older release or without them, is in its
-- type set, so the union answers for both. The union is a list of keys
-- until a plan needs one set: when it drives, the script stores the
-- newest CAP of it in range (what a plan examines) in a temporary key,
-- copying from each type set only what is newer than the CAP-th newest
-- entry (found by a binary search on the received time with ZCOUNT); when
-- it is checked against, a walk looks IDs up in each type set, and the
-- large plan intersects with each type set and unites the parts. Both
-- copy more than a prefix set did. Over 100,000 executions (on a loaded
-- 2-core machine) a prefix that drives takes about as long as its set did
-- (invoice.* over 24 hours: 18-21 ms against 21-24 ms); a prefix checked
-- against a smaller filter (customer.* and livemode=false), or a state
-- filter over a prefix of 19,000 entries, up to about twice as long
-- (72-134 ms against 35-70 ms). The prefix sets cost 189 bytes an event.
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

-- excl are the sets a matching entry must not be in. A filter on a
-- field's implicit value (the implicit hash; see implicit.go) has no set:
-- its key leaves keys, and the sets of the field's other values join excl
-- (livemode: the other boolean; apiVersion: every other value that
-- values:apiVersion lists). When no key is left, the all set drives.
local excl, exclApplied = {}, false -- exclApplied: B is already without them
do
  local imp = redis.call("HGETALL", pre .. "implicit")
  local implicit = {}
  for i = 1, #imp, 2 do implicit[imp[i]] = imp[i + 1] end
  local kept = {}
  for k = 1, #keys do
    local key, other = keys[k], nil
    if type(key) == "string" then
      if implicit.livemode and key == pre .. "livemode:" .. implicit.livemode then
        other = {pre .. "livemode:" .. (implicit.livemode == "true" and "false" or "true")}
      elseif implicit.apiVersion and key == pre .. "apiVersion:" .. implicit.apiVersion then
        other = {}
        for _, v in ipairs(redis.call("SMEMBERS", pre .. "values:apiVersion")) do
          if v ~= implicit.apiVersion then other[#other + 1] = pre .. "apiVersion:" .. v end
        end
      end
    end
    if other then
      for _, o in ipairs(other) do excl[#excl + 1] = o end
    else
      kept[#kept + 1] = key
    end
  end
  if #kept == 0 then kept[1] = pre .. "all" end
  keys = kept
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

-- keptOnly counts the archived executions among those counted that only
-- the failure store keeps (asynq trimmed them from its archive): a re-run
-- copies them instead of running them now.
local keptOnly = 0

-- state reads a task's state: asynq's, or archived when only the failure
-- store keeps it; its second value is true in that case.
local function state(id)
  local st = redis.call("HGET", tpre .. id, "state")
  if not st and redis.call("EXISTS", frec .. id) == 1 then return "archived", true end
  return st, false
end

-- archivedIn counts the archived tasks among set (nil: all): in asynq's
-- archive or in the failure store. It sets keptOnly to those in the
-- failure store alone.
local function archivedIn(set)
  local A, F = qpre .. "archived", fall
  if setops then
    if set then
      keptOnly = redis.call("ZINTERCARD", 2, set, F) - redis.call("ZINTERCARD", 3, set, A, F)
      return redis.call("ZINTERCARD", 2, set, A) + keptOnly
    end
    keptOnly = redis.call("ZCARD", F) - redis.call("ZINTERCARD", 2, A, F)
    return redis.call("ZCARD", A) + keptOnly
  end
  -- No ZINTERCARD (miniredis): the archive holds at most 10,000.
  local kept = redis.call("ZCARD", F)
  local n = kept
  local size = redis.call("ZCARD", A)
  for i = 0, size - 1, 1000 do
    local ids = redis.call("ZRANGE", A, i, i + 999)
    if #ids > 0 then
      for _, v in ipairs(redis.call("ZMSCORE", F, unpack(ids))) do
        if v then kept = kept - 1 else n = n + 1 end
      end
    end
  end
  keptOnly = kept
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
  for _, x in ipairs(exclApplied and {} or excl) do
    local s = redis.call("ZMSCORE", x, unpack(ids))
    for i = 1, #ids do
      if s[i] then ok[i] = false end
    end
  end
  for i = 1, #ids do
    if ok[i] then
      local st, kept = state(ids[i])
      if not st then
        missing[#missing + 1] = ids[i]
      else
        if count then
          counts[st] = (counts[st] or 0) + 1
          if kept then keptOnly = keptOnly + 1 end
        end
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
