#!/usr/bin/env python3
"""fezz_example under hostile input, over raw sockets.

    python3 tests/hardening_test.py path/to/fezz_example

One test per rule of RFC 9112/9110 or limit of the host: each checks the
status, that the connection closes where it must, that nothing sent behind a
rejected request runs, and that the host still answers correctly afterwards.
Then memory per connection under endless chunk lines and trailers, running
out of descriptors, the caps on calls in flight, and the log under a flood.
Prints "N passed, N failed". Python standard library only.
"""

import resource
import threading

from blackbox import *  # noqa: F401,F403 (the helpers every test uses)

SHARED = None  # the server most tests talk to, started before the tests
SMUGGLED = b"GET /hello HTTP/1.1\r\nHost: fezz\r\nX-Name: smuggled\r\n\r\n"
MIB = 1024 * 1024


# ---------------------------------------------------------------------------
# Helpers


def hello_calls(port):
    """How many times the hello function has been called on this server."""
    return metrics_of(port, "hello")["requests"]


def closed_after_reply(stream):
    """True when the server sends nothing more and closes after its answer."""
    try:
        return stream.read(1) == b""
    except (ConnectionResetError, TimeoutError, OSError):
        return True


def check_rejected(request, status, what, message=None):
    """Sends `request` (with SMUGGLED behind it) on a new connection: one answer
    with `status`, then a close; the smuggled request never reaches hello."""
    before = hello_calls(SHARED.port)
    sock, stream = raw_connection(SHARED.port)
    try:
        send_ignoring_reset(sock, request + SMUGGLED)
        reply = read_reply(stream)
        check_json_error(reply, status, what)
        if message is not None:
            check_equal(reply.json()["message"], message, f"{what}: message")
        # HTTP/1.0 closes unless told otherwise; 1.1 must say so.
        http10 = request.split(b"\r\n", 1)[0].endswith(b"HTTP/1.0")
        check_equal(reply.header("connection", "close" if http10 else None), "close",
                    f"{what}: Connection header")
        check(closed_after_reply(stream), f"{what}: the connection stayed open")
    finally:
        stream.close()
        sock.close()
    check_equal(hello_calls(SHARED.port), before, f"{what}: calls of hello behind it")
    check_still_serving(SHARED.port, what)
    check_equal(get(SHARED.port, "/hello").body, b"Hello, World!", f"GET /hello after {what}")


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def stream_until_closed(port, head, filler, total):
    """Sends `head`, then `filler` repeated up to `total` bytes, while reading
    the answer in parallel; returns (reply, bytes sent)."""
    sock, stream = raw_connection(port, timeout=30)
    sent = [0]

    def send():
        try:
            sock.sendall(head)
            block = filler * (64 * 1024 // len(filler))
            while sent[0] < total:
                sock.sendall(block)
                sent[0] += len(block)
        except OSError:
            pass  # the server answered and closed

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        reply = read_reply(stream)
    finally:
        sender.join(timeout=30)
        stream.close()
        sock.close()
    return reply, sent[0]


def check_memory_bounded(head, filler, status, what):
    with Server() as server:
        check_still_serving(server.port, "start")
        before = rss_kib(server.proc.pid, "VmHWM")
        reply, sent = stream_until_closed(server.port, head, filler, 64 * MIB)
        check_json_error(reply, status, what)
        after = rss_kib(server.proc.pid, "VmHWM")
        print(f"     {what}: peak RSS {before} -> {after} KiB, {sent // 1024} KiB sent before the close")
        check(after - before < 4 * 1024,
              f"{what}: peak RSS grew by {after - before} KiB (more than 4 MiB)")
        check_still_serving(server.port, what)


def get_many(port, path, count):
    """`count` GETs at once, each on its own connection; their replies."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: get(port, path, timeout=30), range(count)))


# ---------------------------------------------------------------------------
# 1. Framing


@test
def rfc9112_6_1_transfer_encoding_in_http10_is_400_and_closes():
    check_rejected(b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
                   "Transfer-Encoding in HTTP/1.0",
                   "Transfer-Encoding in an HTTP/1.0 request")


@test
def rfc9112_6_3_transfer_encoding_not_ending_in_chunked_is_400_and_closes():
    head = b"POST /echo HTTP/1.1\r\nHost: fezz\r\n"
    body = b"5\r\nhello\r\n0\r\n\r\n"
    for lines in (b"Transfer-Encoding: gzip\r\n",
                  b"Transfer-Encoding: chunked, gzip\r\n",
                  b"Transfer-Encoding: chunked, \r\n",
                  b"Transfer-Encoding: chunked, chunked\r\n",
                  b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
                  b"Transfer-Encoding: chunked\r\nTransfer-Encoding: \r\n",
                  b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n"):
        check_rejected(head + lines + b"\r\n" + body, 400, repr(lines))


@test
def rfc9112_3_2_http11_without_host_is_400_and_closes():
    check_rejected(b"GET /hello HTTP/1.1\r\n\r\n", 400, "no Host",
                   "an HTTP/1.1 request needs a Host header")


@test
def rfc9112_3_2_two_host_lines_are_400_and_close():
    check_rejected(b"GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "two Host lines",
                   "more than one Host header")
    check_rejected(b"GET /hello HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400,
                   "two Host lines in HTTP/1.0")


@test
def rfc9112_3_2_2_absolute_form_is_routed_by_its_path_and_query():
    sock, stream = raw_connection(SHARED.port)
    try:
        sock.sendall(b"GET http://fezz.example/hello HTTP/1.1\r\nHost: other\r\nX-Name: Abs\r\n\r\n"
                     b"GET http://fezz.example/users/7?x=1 HTTP/1.1\r\nHost: other\r\n\r\n")
        first = read_reply(stream)
        check_equal((first.status, first.body), (200, b"Hello, Abs!"), "absolute-form /hello")
        second = read_reply(stream)
        check_equal((second.status, second.json()), (200, {"id": "7"}), "absolute-form /users/7")
    finally:
        stream.close()
        sock.close()


@test
def rfc9110_15_2_http10_expect_100_continue_gets_no_1xx():
    sock, stream = raw_connection(SHARED.port, timeout=1.0)
    try:
        sock.sendall(b"POST /echo HTTP/1.0\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        try:
            early = sock.recv(64)
        except TimeoutError:
            early = b""
        check_equal(early, b"", "bytes before the body was sent (a 1xx to HTTP/1.0)")
        sock.settimeout(IO_TIMEOUT)
        sock.sendall(b"hello")
        reply = read_reply(stream)
        check_equal((reply.status, reply.body), (200, b"hello"), "the answer")
    finally:
        stream.close()
        sock.close()


@test
def rfc3986_2_target_bytes_outside_visible_ascii_are_400_and_close():
    check_rejected(b"GET /users/\xff HTTP/1.1\r\nHost: fezz\r\n\r\n", 400, "raw 0xFF in the target",
                   "request target has byte 0xFF at offset 7: send it percent-encoded")
    check_rejected(b"GET /users/\x7f HTTP/1.1\r\nHost: fezz\r\n\r\n", 400, "raw DEL in the target")


@test
def no_percent_encoded_byte_makes_an_example_function_answer_5xx():
    sock, stream = raw_connection(SHARED.port)
    try:
        for byte in range(256):
            for path in (f"/users/%{byte:02X}", f"/hello?x=%{byte:02X}", f"/sleep?ms=%{byte:02X}"):
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: fezz\r\n\r\n".encode())
                reply = read_reply(stream)
                check(reply.status < 500, f"GET {path}: {reply.status} {reply.body[:100]!r}")
                if path.startswith("/users/"):
                    reply.json()  # valid JSON, invalid UTF-8 replaced
    finally:
        stream.close()
        sock.close()


# ---------------------------------------------------------------------------
# 2. Memory per connection


@test
def rfc9112_7_1_endless_chunk_size_line_is_400_with_bounded_memory():
    check_memory_bounded(b"POST /echo HTTP/1.1\r\nHost: fezz\r\nTransfer-Encoding: chunked\r\n\r\n1",
                         b"0", 400, "endless chunk-size line")


@test
def rfc9112_7_1_1_endless_chunk_extension_is_400_with_bounded_memory():
    check_memory_bounded(
        b"POST /echo HTTP/1.1\r\nHost: fezz\r\nTransfer-Encoding: chunked\r\n\r\n5;name=",
        b"v", 400, "endless chunk extension")


@test
def rfc9112_7_1_2_endless_trailer_section_is_431_with_bounded_memory():
    check_memory_bounded(
        b"POST /echo HTTP/1.1\r\nHost: fezz\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\nX-Trailer: ", b"t", 431, "endless trailer section")


# ---------------------------------------------------------------------------
# 3. Descriptors


def count_lines(server):
    server.log.seek(0)
    return len(server.log.read().splitlines())


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@test
def descriptor_limit_caps_connections_and_serves_again_once_clients_leave():
    """2,000 clients under a 1,024-descriptor limit: the host takes what the
    limit allows (keeping some descriptors in reserve), refuses the rest at
    once, spends little CPU and few log lines on them, and serves again once
    they leave. (Running out of descriptors for real is
    fezz_server_out_of_descriptors, in-process.)"""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    check(hard >= 2200, f"this test opens 2,000 sockets; the hard descriptor limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def limit_descriptors():
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    server = Server(preexec_fn=limit_descriptors)
    clients = []
    try:
        server.start()
        server.log.seek(0)
        check(b"only 1024 descriptors may be open" in server.log.read(),
              "no warning that max_connections cannot be reached")
        for _ in range(2000):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex((HOST, server.port))
            clients.append(sock)
        time.sleep(1.0)  # the accepts that can succeed have; the rest fail with EMFILE
        lines_before, cpu_before = count_lines(server), cpu_seconds(server.proc.pid)
        time.sleep(10.0)
        lines = count_lines(server) - lines_before
        cpu = cpu_seconds(server.proc.pid) - cpu_before
        print(f"     10 s at the limit: {cpu:.2f} s of CPU, {lines} log lines")
        check(cpu < 2.5, f"{cpu:.2f} s of CPU in 10 s at the descriptor limit")
        check(lines < 100, f"{lines} log lines in 10 s at the descriptor limit")
        for sock in clients:
            sock.close()
        clients = []
        wait_until(lambda: get(server.port, "/hello", timeout=2).status == 200, 20.0,
                   "serving again once the clients left")
        refused = get(server.port, "/_metrics").json()["connections"]["refused"]
        check(refused >= 900, f"{refused} connections refused of 2,000 (a cap near 960 expected)")
    finally:
        for sock in clients:
            sock.close()
        server.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# ---------------------------------------------------------------------------
# 4. Overload


@test
def max_concurrency_answers_429_with_retry_after_and_counts_it():
    with Server() as server:
        replies = get_many(server.port, "/sleep?ms=1500", 40)
        statuses = sorted(reply.status for reply in replies)
        check_equal(statuses.count(200), 32, "calls served (max_concurrency 32)")
        check_equal(statuses.count(429), 8, "calls refused")
        refused = next(reply for reply in replies if reply.status == 429)
        check_json_error(refused, 429, "over max_concurrency")
        check_equal(refused.header("retry-after"), "1", "Retry-After")
        check_equal(refused.json()["message"],
                    "function 'sleep' is at its limit of 32 concurrent calls", "message")
        check_equal(metrics_of(server.port, "sleep")["throttled"], 8, "throttled in /_metrics")
        check_equal(get(server.port, "/_metrics").json()["requests"]["throttled"], 8,
                    "requests.throttled in /_metrics")
        text = get(server.port, "/_metrics?format=prometheus").body.decode()
        check('fezz_throttled_total{function="sleep"} 8' in text, "fezz_throttled_total")
        check_equal(get(server.port, "/sleep?ms=1").status, 200, "a call once the others ended")


@test
def max_in_flight_answers_429_with_retry_after():
    with Server("--max-in-flight", "2") as server:
        replies = get_many(server.port, "/sleep?ms=1000", 3)
        statuses = sorted(reply.status for reply in replies)
        check_equal(statuses, [200, 200, 429], "statuses with max_in_flight 2")
        refused = next(reply for reply in replies if reply.status == 429)
        check_equal(refused.header("retry-after"), "1", "Retry-After")
        check_equal(refused.json()["message"], "the host is at its limit of 2 calls in flight",
                    "message")
        check_equal(metrics_of(server.port, "sleep")["throttled"], 1, "throttled in /_metrics")
        check_equal(get(server.port, "/hello").status, 200, "a call once the others ended")


@test
def a_flood_of_failing_calls_cannot_flood_the_log():
    with Server() as server:
        start = count_lines(server)
        replies = get_many(server.port, "/sleep?ms=3000", 32)  # 32 timeouts within a second
        check_equal({reply.status for reply in replies}, {504}, "statuses")
        server.log.seek(0)
        logged = server.log.read().decode(errors="replace").splitlines()[start:]
        timed_out = [line for line in logged if "timed out after" in line]
        check(len(timed_out) <= 20, f"{len(timed_out)} 'timed out' lines for 32 timeouts")
        time.sleep(1.1)
        check_equal(get(server.port, "/sleep?ms=3000").status, 504, "one more timeout")
        server.log.seek(0)
        last = [line for line in server.log.read().decode(errors="replace").splitlines()
                if "timed out after" in line][-1]
        check(f"({32 - len(timed_out)} similar lines left out)" in last,
              f"the next line does not count what was left out: {last!r}")


def start_shared_server():
    global SHARED
    SHARED = Server().start()


if __name__ == "__main__":
    sys.exit(run(sys.argv, setup=start_shared_server))
