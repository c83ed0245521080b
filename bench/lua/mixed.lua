-- Every route of fezz_example in turn (GETs, a 1 KiB POST, a coroutine that
-- sleeps, the health endpoint), counting each answer's status. No HEAD: wrk waits
-- for the body its Content-Length announces, which a HEAD answer never has. At the end, one
-- line "STATUSES {...}" with the count of each status over all threads.
local threads = {}

setup = function(thread)
  table.insert(threads, thread)
end

local requests
local next_request = 0
statuses = {}

init = function(args)
  requests = {
    wrk.format("GET", "/hello"),
    wrk.format("GET", "/users/42"),
    wrk.format("POST", "/echo", {["Content-Type"] = "text/plain"}, string.rep("x", 1024)),
    wrk.format("GET", "/sleep?ms=5"),
    wrk.format("GET", "/_health"),
  }
end

request = function()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(total) do
    table.insert(parts, string.format('"%d":%d', status, count))
  end
  io.write("STATUSES {" .. table.concat(parts, ",") .. "}\n")
end
