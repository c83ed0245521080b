-- HTTP/1.1 pipelining: each write carries `depth` GETs of the URL's path
-- (default 16; `wrk ... -- 8` for another depth) and wrk waits for all of
-- their responses before the next write. wrk then records one latency sample
-- per batch, and counts every response as a request.
local batch

init = function(args)
  local depth = tonumber(args[1]) or 16
  local one = wrk.format()
  local parts = {}
  for i = 1, depth do
    parts[i] = one
  end
  batch = table.concat(parts)
end

request = function()
  return batch
end
