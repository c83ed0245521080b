-- POST of a 1 KiB body (for Fezz's /echo, which answers the body as it came).
wrk.method = "POST"
wrk.body = string.rep("x", 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
