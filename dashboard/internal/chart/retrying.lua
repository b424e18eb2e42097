-- retrying.lua: how many of one queue's tasks waiting for their next
-- retry were received in each of the chart's buckets. asynq's retry set is
-- scored by the next retry's time, so the received time is the index's:
-- ZMSCORE of the retry set's members against the index's set of all.
--
-- KEYS[1] = asynq's retry ZSET of the queue, KEYS[2] = the index's ZSET of
-- all its task IDs by received time (unix ms).
-- ARGV[1] = the most entries of the retry set to examine, the soonest to
-- retry first; ARGV[2 .. n+1] = the n buckets' starts (unix ms, rising);
-- ARGV[n+2] = the range's end (inclusive).
-- Returns {entries in the retry set, entries examined, bucket 1's count,
-- …, bucket n's}. A bucket is [its start, the next one's start), the last
-- one [its start, the end]; an ID the index lacks counts nowhere.
local cap = tonumber(ARGV[1])
local bounds = {}
for i = 2, #ARGV do bounds[i - 1] = tonumber(ARGV[i]) end
local n = #bounds - 1
local out = {redis.call("ZCARD", KEYS[1]), 0}
for i = 1, n do out[i + 2] = 0 end
if cap < 1 or n < 1 then return out end
local ids = redis.call("ZRANGE", KEYS[1], 0, cap - 1)
out[2] = #ids
local chunk = 1000 -- unpack's limit is about 8000 values
for s = 1, #ids, chunk do
  local part = {}
  for i = s, math.min(s + chunk - 1, #ids) do part[#part + 1] = ids[i] end
  for _, score in ipairs(redis.call("ZMSCORE", KEYS[2], unpack(part))) do
    local r = score and tonumber(score)
    if r and r >= bounds[1] and r <= bounds[n + 1] then
      local lo, hi = 1, n -- the last bucket whose start is <= r
      while lo < hi do
        local mid = math.floor((lo + hi + 1) / 2)
        if bounds[mid] <= r then lo = mid else hi = mid - 1 end
      end
      out[lo + 2] = out[lo + 2] + 1
    end
  end
end
return out
