-- remove.lua: the Lua every index script starts with (removeScript,
-- pruneScript, and the query script: see query.lua).
--
-- remove(pre, id) drops id from every index key that holds it (the keys
-- hash lists them, written by joinKeys in execindex.go, in one of its three
-- forms), and its re-run history. keyfams are joinKeys's keyTags, by tag.
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
