-- query.lua: Query's script, the last of the files it is made of:
-- remove.lua, query_lib.lua, query_small.lua, query_large.lua, then this
-- file (execindex.go's queryScript).
--
-- KEYS: the index sets to intersect (at least one); with a type prefix,
-- the values set of types stands where the prefix's set would.
-- ARGV: [1] index prefix, [2] asynq queue prefix "asynq:{q}:", [3] max
-- score or "+inf", [4] min score or "-inf", [5] wanted states, space
-- separated ("" for any), [6] offset, [7] limit, [8] "1" when KEYS is
-- only the all set and no time range applies, [9] an exact ID ("" for
-- none), [10] "1" when the server has ZINTERCARD and ZRANGESTORE (Redis ≥
-- 7.0), [11] a random suffix for temporary keys, [12] SMALL, [13] CAP:
-- the most index entries the script examines (see MaxExamined), [14] the
-- failure store's prefix of the queue (pkg/failures), [15] a type prefix
-- ("" for none).
--
-- A filter on a field's implicit value (livemode, apiVersion; the
-- implicit hash, see implicit.go) has no set: query_lib.lua takes its key
-- out of keys and puts the field's other values' sets in excl, which no
-- matching entry is in. A walk checks them with ZMSCORE; the large plan
-- subtracts them from its base set (ZDIFFSTORE).
--
-- A task asynq no longer holds whose failure the failure store keeps
-- (trimmed from asynq's archive) is archived; the archived count is of
-- asynq's archive and the failure store together.
--
-- Two plans:
--   - small: walk the smallest set (or the exact ID and its re-runs)
--     newest first, check the other sets with ZMSCORE and read each
--     task's state with HGET. Counts are exact. Used when the smallest set
--     holds at most SMALL entries, or on servers without ZINTERCARD.
--   - large: intersect in C (ZINTERSTORE, ZRANGESTORE) into a temporary
--     set, count per state with ZINTERCARD against asynq's state sets, and
--     find the page by walking newest first until it is full, or, when
--     the wanted states hold few tasks, by intersecting them directly.
--
-- Every plan examines at most CAP entries, the newest in range: the large
-- plan copies only the newest CAP of its driving set (ZRANGESTORE … LIMIT)
-- before intersecting, and every walk stops after CAP entries. When that
-- leaves entries out, capped is 1 and the counts are lower bounds.
--
-- Returns {pending, active, scheduled, retry, archived, completed,
-- aggregating, dropped, capped, kept only, id, score, state, id, score,
-- state, …}: kept only is how many of the archived count only the failure
-- store keeps.

-- The smallest set drives.
local driver, size = 1, -1
for k = 1, #keys do
  local n = card(keys[k])
  if size < 0 or n < size then driver, size = k, n end
end
if exact == "" and type(keys[driver]) == "table" then keys[driver] = store(keys[driver]) end

if exact ~= "" or not setops or size <= SMALL then
  smallPlan(driver)
else
  largePlan(driver)
end

if #temps > 0 then redis.call("DEL", unpack(temps)) end
capped = math.max(capped, unionCapped)
for _, id in ipairs(missing) do remove(pre, id) end
local out = {counts.pending, counts.active, counts.scheduled, counts.retry, counts.archived, counts.completed, counts.aggregating, #missing, capped, keptOnly}
for _, v in ipairs(page) do out[#out + 1] = v end
return out
