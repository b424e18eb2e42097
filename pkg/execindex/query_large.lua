-- query_large.lua: the query script's large plan (see query.lua), which
-- intersects in C and counts with ZINTERCARD.
--
-- It builds the base set B in Redis: only the newest CAP entries in range
-- of the driving set take part (ZRANGESTORE … LIMIT; a stored union of
-- type sets is that already), intersected with the other sets
-- (ZINTERSTORE; a union of type sets is intersected with each of its sets,
-- and the parts united). It counts B per state with ZINTERCARD against
-- asynq's state sets (archived: asynq's archive and the failure store
-- together), and finds the page either by intersecting the wanted states
-- with B when they hold few rows (at most SMALL), or by walking B newest
-- first until the page is full. It needs ZINTERCARD and ZRANGESTORE
-- (Redis 7.0 or later), and serves when the smallest set holds more than
-- SMALL entries.
local function largePlan(driver)
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
  if #excl > 0 and not allOnly then
    -- Less the sets of an implicit value's other values.
    local args = {"ZDIFFSTORE", tmp, #excl + 1, B}
    for _, x in ipairs(excl) do args[#args + 1] = x end
    redis.call(unpack(args))
    B = tmp
    exclApplied = true
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
