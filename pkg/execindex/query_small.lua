-- query_small.lua: the query script's small plan (see query.lua), which
-- walks a set newest first and checks each entry in Lua.
--
-- It walks the smallest set (driver), or the exact ID and its re-runs,
-- newest first, checks the other sets with ZMSCORE and reads each task's
-- state with HGET; counts are exact. It serves when the smallest set holds
-- at most SMALL entries, or on servers without ZINTERCARD and ZRANGESTORE
-- (Redis before 7.0, miniredis), where a query over the all set alone
-- takes asynq's own counts and walks only to the page. Like every plan it
-- examines at most CAP entries, the newest in range (walk), and sets
-- capped when that leaves entries out.
local function smallPlan(driver)
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
  else
    walk(keys, driver, true)
  end
end
