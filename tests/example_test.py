#!/usr/bin/env python3
"""fezz_example as a black box: the binary, real sockets, a real HTTP client.

    python3 tests/example_test.py path/to/fezz_example

Starts the server with --port 0 on 127.0.0.1 (more than once: some tests need
a fresh server or different flags), checks the contract of every endpoint and
the host's limits, and prints "N passed, N failed". Exits non-zero on a failure.
Python standard library only.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import blackbox
from blackbox import *  # noqa: F401,F403 (the helpers every test uses)

SHARED = None  # the server most tests talk to, started before the tests

# ---------------------------------------------------------------------------
# Tests


# --- the contract ----------------------------------------------------------


@test
def health_answers_ok():
    reply = get(SHARED.port, "/_health")
    check_equal(reply.status, 200, "status")
    check_equal(reply.body, b"OK", "body")


@test
def metrics_json_lists_every_function_with_its_counters():
    with Server() as server:
        for _ in range(3):
            check_equal(get(server.port, "/hello").status, 200, "GET /hello")
        reply = get(server.port, "/_metrics")
        check_equal(reply.status, 200, "status")
        check(reply.header("content-type", "").startswith("application/json"),
              f"content-type {reply.header('content-type')!r}")
        functions = {f["id"]: f for f in reply.json()["functions"]}
        check_equal(sorted(functions), ["counter", "echo", "hello", "sleep", "user"], "function ids")
        for entry in functions.values():
            for key in ("id", "version", "method", "path", "loaded", "requests", "errors",
                        "loads", "unloads"):
                check(key in entry, f"function {entry['id']!r} lacks {key!r}")
        hello = functions["hello"]
        check_equal((hello["method"], hello["path"]), ("GET", "/hello"), "hello's route")
        check_equal((hello["requests"], hello["loads"], hello["loaded"]), (3, 1, True),
                    "hello's requests, loads, loaded")
        check_equal((functions["echo"]["method"], functions["echo"]["path"]), ("POST", "/echo"),
                    "echo's route")
        check_equal((functions["echo"]["requests"], functions["echo"]["loaded"]), (0, False),
                    "echo (never called): requests, loaded")


@test
def metrics_prometheus_is_text_exposition():
    with Server() as server:
        for _ in range(3):
            check_equal(get(server.port, "/hello").status, 200, "GET /hello")
        reply = get(server.port, "/_metrics?format=prometheus")
        check_equal(reply.status, 200, "status")
        check(reply.header("content-type", "").startswith("text/plain"),
              f"content-type {reply.header('content-type')!r}")
        lines = reply.body.decode().splitlines()
        check("# TYPE fezz_requests_total counter" in lines, "no '# TYPE fezz_requests_total counter'")
        check('fezz_requests_total{function="hello"} 3' in lines,
              'no line \'fezz_requests_total{function="hello"} 3\'')
        check('fezz_loaded{function="hello"} 1' in lines, "hello is not shown loaded")
        for line in lines:
            check(line.startswith("#") or re.fullmatch(r'[a-z_]+(\{[^}]*\})? \S+', line),
                  f"not an exposition line: {line!r}")


@test
def hello_greets_the_world():
    reply = get(SHARED.port, "/hello")
    check_equal(reply.status, 200, "status")
    check(reply.header("content-type", "").startswith("text/plain"),
          f"content-type {reply.header('content-type')!r}")
    check_equal(reply.body, b"Hello, World!", "body")


@test
def hello_greets_x_name():
    reply = get(SHARED.port, "/hello", headers={"X-Name": "Alice"})
    check_equal((reply.status, reply.body), (200, b"Hello, Alice!"), "status, body")


@test
def echo_returns_binary_body_and_its_content_type():
    body = bytes(range(256)) * 16 + b"\x00\r\n\r\n\x00"
    reply = call(SHARED.port, "POST", "/echo", body=body,
                 headers={"Content-Type": "application/x-fezz-test"})
    check_equal(reply.status, 200, "status")
    check(reply.body == body, f"body differs ({len(reply.body)} bytes back, {len(body)} sent)")
    check_equal(reply.header("content-type"), "application/x-fezz-test", "content-type")


@test
def echo_without_content_type_answers_octet_stream():
    reply = call(SHARED.port, "POST", "/echo", body=b"\x00abc")
    check_equal((reply.status, reply.body), (200, b"\x00abc"), "status, body")
    check_equal(reply.header("content-type"), "application/octet-stream", "content-type")


@test
def echo_returns_a_one_mebibyte_body():
    body = os.urandom(1024 * 1024)
    reply = call(SHARED.port, "POST", "/echo", body=body,
                 headers={"Content-Type": "application/octet-stream"})
    check_equal(reply.status, 200, "status")
    check(reply.body == body, f"body differs ({len(reply.body)} bytes back, {len(body)} sent)")


@test
def counter_starts_at_one_and_rises_by_one():
    with Server() as server:
        counts = []
        for _ in range(5):
            reply = get(server.port, "/counter")
            check_equal(reply.status, 200, "status")
            check(reply.header("content-type", "").startswith("application/json"),
                  f"content-type {reply.header('content-type')!r}")
            counts.append(reply.json()["count"])
        check_equal(counts, [1, 2, 3, 4, 5], "counts")


@test
def counter_counts_exactly_once_per_call_under_concurrency():
    threads, calls = 8, 25
    with Server() as server:
        def worker(_):
            conn = http.client.HTTPConnection(HOST, server.port, timeout=IO_TIMEOUT)
            counts = []
            try:
                for _ in range(calls):
                    conn.request("GET", "/counter")
                    response = conn.getresponse()
                    check_equal(response.status, 200, "status")
                    counts.append(json.loads(response.read())["count"])
            finally:
                conn.close()
            return counts

        with ThreadPoolExecutor(threads) as pool:
            counts = [c for worker_counts in pool.map(worker, range(threads)) for c in worker_counts]
        check_equal(sorted(counts), list(range(1, threads * calls + 1)), "the set of counts")


@test
def user_answers_its_id():
    reply = get(SHARED.port, "/users/42")
    check_equal(reply.status, 200, "status")
    check_equal(reply.json(), {"id": "42"}, "body")


@test
def user_id_is_percent_decoded():
    reply = get(SHARED.port, "/users/J%C3%BCrgen%20M")
    check_equal((reply.status, reply.json()), (200, {"id": "J\u00fcrgen M"}), "status, body")
    reply = get(SHARED.port, "/users/a%2Fb")
    check_equal((reply.status, reply.json()), (200, {"id": "a/b"}), "status, body (%2F)")


@test
def sleep_waits_then_answers():
    started = time.monotonic()
    reply = get(SHARED.port, "/sleep?ms=200")
    elapsed = time.monotonic() - started
    check_equal((reply.status, reply.body), (200, b"slept 200 ms"), "status, body")
    check(0.19 <= elapsed < 1.5, f"answered after {elapsed:.3f} s")


@test
def sleep_past_its_timeout_is_504():
    started = time.monotonic()
    reply = get(SHARED.port, "/sleep?ms=2600")
    elapsed = time.monotonic() - started
    check_json_error(reply, 504, "GET /sleep?ms=2600")
    check(1.9 <= elapsed < 2.5, f"504 after {elapsed:.3f} s, expected at the 2 s timeout")


@test
def sleep_with_a_bad_ms_is_400():
    check_json_error(get(SHARED.port, "/sleep?ms=abc"), 400, "GET /sleep?ms=abc")
    check_still_serving(SHARED.port, "/sleep?ms=abc")


@test
def unknown_path_is_404_with_json_error():
    reply = get(SHARED.port, "/no/such/function")
    check_json_error(reply, 404, "GET /no/such/function")
    check_equal(reply.json()["error"], "Not Found", "JSON 'error'")


@test
def known_path_with_other_method_is_405_with_allow():
    reply = get(SHARED.port, "/echo")
    check_json_error(reply, 405, "GET /echo")
    check_equal(reply.header("allow"), "POST", "Allow")
    reply = call(SHARED.port, "POST", "/hello", body=b"x")
    check_json_error(reply, 405, "POST /hello")
    check("GET" in (reply.header("allow") or ""), f"Allow {reply.header('allow')!r} lacks GET")


@test
def unknown_method_is_501():
    reply = call(SHARED.port, "BREW", "/hello")
    check_json_error(reply, 501, "BREW /hello")
    check_still_serving(SHARED.port, "BREW /hello")


# --- idle unload -------------------------------------------------------------


@test
def idle_function_unloads_and_reloads_from_zero():
    with Server("--idle-timeout", "1") as server:
        counts = [get(server.port, "/counter").json()["count"] for _ in range(3)]
        last_call = time.monotonic()
        check_equal(counts, [1, 2, 3], "counts before unloading")

        def unloaded():
            entry = metrics_of(server.port, "counter")
            return entry["loaded"] is False and entry["unloads"] >= 1

        wait_until(unloaded, 3.0 - (time.monotonic() - last_call),
                   "/_metrics shows counter unloaded within 3 s of its last call")
        check_equal(get(server.port, "/counter").json(), {"count": 1}, "first count after reload")
        check_equal(metrics_of(server.port, "counter")["loads"], 2, "counter's loads")


# --- concurrency ---------------------------------------------------------------


@test
def sleeping_calls_hold_no_thread():
    sleepers = 16

    def sleep_call(_):
        return get(SHARED.port, "/sleep?ms=1500")

    check_equal(get(SHARED.port, "/hello").status, 200, "warming /hello")
    with ThreadPoolExecutor(sleepers) as pool:
        pending = [pool.submit(sleep_call, i) for i in range(sleepers)]
        wait_until(lambda: metrics_of(SHARED.port, "sleep")["in_flight"] >= sleepers, 1.0,
                   f"{sleepers} sleeps in flight")
        for path, body in (("/_health", b"OK"), ("/hello", b"Hello, World!")):
            started = time.monotonic()
            reply = get(SHARED.port, path)
            elapsed = time.monotonic() - started
            check_equal((reply.status, reply.body), (200, body), f"GET {path} during the sleeps")
            check(elapsed < 0.1, f"GET {path} took {elapsed * 1000:.0f} ms during the sleeps")
            check(not all(p.done() for p in pending), "the sleeps ended too early to measure")
        replies = [p.result(timeout=IO_TIMEOUT) for p in pending]
    for reply in replies:
        check_equal((reply.status, reply.body), (200, b"slept 1500 ms"), "a sleep's answer")


# --- HTTP/1.1 ----------------------------------------------------------------


@test
def head_hello_has_length_and_no_body():
    sock, stream = raw_connection(SHARED.port)
    try:
        sock.sendall(b"HEAD /hello HTTP/1.1\r\nHost: fezz\r\n\r\n"
                     b"GET /_health HTTP/1.1\r\nHost: fezz\r\n\r\n")
        reply = read_reply(stream, head=True)
        check_equal(reply.status, 200, "HEAD status")
        check_equal(reply.header("content-length"), "13", "HEAD Content-Length")
        # Had the HEAD answer carried a body, it would stand where the next status line should.
        check_equal(read_reply(stream).body, b"OK", "the answer after HEAD")
    finally:
        stream.close()
        sock.close()
    reply = call(SHARED.port, "HEAD", "/hello")
    check_equal((reply.status, reply.body), (200, b""), "HEAD via http.client")


@test
def keep_alive_serves_three_requests_on_one_connection():
    conn = http.client.HTTPConnection(HOST, SHARED.port, timeout=IO_TIMEOUT)
    try:
        local_ends = set()
        for path, expected in (("/hello", b"Hello, World!"), ("/users/7", b'{"id":"7"}'),
                               ("/_health", b"OK")):
            conn.request("GET", path)
            response = conn.getresponse()
            check_equal((response.status, response.read()), (200, expected), f"GET {path}")
            check(response.getheader("Connection", "").lower() != "close",
                  f"GET {path} answered Connection: close")
            check(conn.sock is not None, f"connection closed after GET {path}")
            local_ends.add(conn.sock.getsockname())
        check_equal(len(local_ends), 1, "connections used")
    finally:
        conn.close()


@test
def pipelined_requests_are_answered_in_order():
    sock, stream = raw_connection(SHARED.port)
    try:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: fezz\r\n\r\n"
                     b"GET /users/1 HTTP/1.1\r\nHost: fezz\r\n\r\n"
                     b"GET /counter HTTP/1.1\r\nHost: fezz\r\n\r\n")
        replies = [read_reply(stream) for _ in range(3)]
    finally:
        stream.close()
        sock.close()
    check_equal([r.status for r in replies], [200, 200, 200], "statuses")
    check_equal(replies[0].body, b"Hello, World!", "first body")
    check_equal(json.loads(replies[1].body), {"id": "1"}, "second body")
    check(isinstance(json.loads(replies[2].body).get("count"), int),
          f"third body {replies[2].body!r}")


@test
def request_id_is_echoed_when_sent():
    reply = get(SHARED.port, "/hello", headers={"X-Request-Id": "test-id-42"})
    check_equal(reply.header("x-request-id"), "test-id-42", "x-request-id")


@test
def request_id_is_generated_when_not_sent():
    first = get(SHARED.port, "/hello").header("x-request-id")
    second = get(SHARED.port, "/hello").header("x-request-id")
    check(first, f"no generated x-request-id ({first!r})")
    check(first != second, f"two requests got the same generated id {first!r}")


@test
def expect_100_continue_gets_continue_before_the_answer():
    sock, stream = raw_connection(SHARED.port)
    try:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: fezz\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = read_reply(stream)
        check_equal(interim.status, 100, "interim status")
        sock.sendall(b"hello")
        final = read_reply(stream)
        check_equal((final.status, final.body), (200, b"hello"), "final status, body")
    finally:
        stream.close()
        sock.close()


# --- bad input -------------------------------------------------------------------


@test
def long_target_is_414():
    path = "/hello?pad=" + "a" * (9 * 1024)
    check_json_error(get(SHARED.port, path), 414, "a 9 KiB target")
    check_still_serving(SHARED.port, "a 9 KiB target")
    request = b"GET /hello?pad=" + b"a" * (20 * 1024) + b" HTTP/1.1\r\nHost: fezz\r\n\r\n"
    check_json_error(raw_exchange(SHARED.port, request), 414, "a 20 KiB target")
    check_still_serving(SHARED.port, "a 20 KiB target")


@test
def large_header_section_is_431():
    pad = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"b" * 1000) for i in range(17))
    reply = raw_exchange(SHARED.port, b"GET /hello HTTP/1.1\r\nHost: fezz\r\n" + pad + b"\r\n")
    check_json_error(reply, 431, "a 17 KiB header section")
    check_still_serving(SHARED.port, "a 17 KiB header section")


@test
def body_over_max_body_bytes_is_413():
    with Server("--max-body-bytes", "1024") as server:
        reply = call(server.port, "POST", "/echo", body=b"x" * 1024)
        check_equal((reply.status, len(reply.body)), (200, 1024), "a body of exactly 1024 bytes")
        head = b"POST /echo HTTP/1.1\r\nHost: fezz\r\nContent-Length: 4096\r\n\r\n"
        check_json_error(raw_exchange(server.port, head + b"y" * 4096), 413, "a 4 KiB body")
        check_still_serving(server.port, "a 4 KiB body")
        chunked = (b"POST /echo HTTP/1.1\r\nHost: fezz\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"800\r\n" + b"z" * 2048 + b"\r\n0\r\n\r\n")
        check_json_error(raw_exchange(server.port, chunked), 413, "a 2 KiB chunked body")
        check_still_serving(server.port, "a 2 KiB chunked body")


@test
def announced_body_over_default_limit_is_413_at_once():
    # Only the header is sent: the answer must not wait for 9 MiB that never come.
    head = b"POST /echo HTTP/1.1\r\nHost: fezz\r\nContent-Length: %d\r\n\r\n" % (9 * 1024 * 1024)
    check_json_error(raw_exchange(SHARED.port, head), 413, "Content-Length of 9 MiB")
    check_still_serving(SHARED.port, "Content-Length of 9 MiB")


@test
def garbage_request_line_is_400():
    check_json_error(raw_exchange(SHARED.port, b"this is not http\r\n\r\n"), 400, "garbage")
    check_still_serving(SHARED.port, "a garbage request line")


@test
def transfer_encoding_gzip_is_400():
    # Not ending in chunked, the body's length is unknown (RFC 9112 6.3); read as
    # "no body", the bytes after this header would become a request of their own.
    request = (b"POST /echo HTTP/1.1\r\nHost: fezz\r\nContent-Type: text/plain\r\n"
               b"Transfer-Encoding: gzip\r\n\r\n")
    check_json_error(raw_exchange(SHARED.port, request), 400, "Transfer-Encoding: gzip")
    check_still_serving(SHARED.port, "Transfer-Encoding: gzip")


@test
def transfer_encoding_gzip_then_chunked_is_501():
    # The host decodes chunked only: a gzip coding would reach the function still encoded.
    request = (b"POST /echo HTTP/1.1\r\nHost: fezz\r\nContent-Type: text/plain\r\n"
               b"Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    check_json_error(raw_exchange(SHARED.port, request), 501, "Transfer-Encoding: gzip, chunked")
    check_still_serving(SHARED.port, "Transfer-Encoding: gzip, chunked")


# --- command line ----------------------------------------------------------------


def run_binary(*args):
    return subprocess.run([blackbox.BINARY, *args], capture_output=True, timeout=IO_TIMEOUT,
                          stdin=subprocess.DEVNULL)


@test
def help_prints_usage_and_exits_0():
    result = run_binary("--help")
    check_equal(result.returncode, 0, "exit status")
    check(result.stdout.startswith(b"usage: fezz_example"), f"stdout {result.stdout[:80]!r}")


@test
def unknown_flag_exits_2():
    result = run_binary("--no-such-flag", "1")
    check_equal(result.returncode, 2, "exit status")
    check(b"unknown option --no-such-flag" in result.stderr, f"stderr {result.stderr[:200]!r}")


@test
def port_comes_from_fezz_port():
    with Server(env={"FEZZ_PORT": "0"}, port_flag=False) as server:
        check(server.port not in (0, 8080), f"listening on port {server.port}")
        check_still_serving(server.port, "starting with FEZZ_PORT=0")


@test
def decimal_idle_timeout_is_accepted_and_used():
    with Server("--idle-timeout", "0.5") as server:
        check_equal(get(server.port, "/counter").json(), {"count": 1}, "first count")
        wait_until(lambda: metrics_of(server.port, "counter")["unloads"] >= 1, 2.0,
                   "counter unloaded with --idle-timeout 0.5")


# --- shutdown --------------------------------------------------------------------


@test
def sigterm_drains_in_flight_requests_and_exits_0():
    with Server() as server:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(get, server.port, "/sleep?ms=1000")
            wait_until(lambda: metrics_of(server.port, "sleep")["in_flight"] == 1, 1.0,
                       "the sleep in flight")
            server.proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            reply = pending.result(timeout=IO_TIMEOUT)
        check_equal((reply.status, reply.body), (200, b"slept 1000 ms"), "the in-flight request")
        try:
            status = server.proc.wait(timeout=5.0 - (time.monotonic() - signalled))
        except subprocess.TimeoutExpired:
            raise AssertionError("still running 5 s after SIGTERM") from None
        check_equal(status, 0, "exit status after SIGTERM")


# ---------------------------------------------------------------------------


@test
def drain_grace_fails_health_but_serves_as_usual_then_closes():
    with Server("--drain-grace", "1.5") as server:
        sock, stream = raw_connection(server.port)
        try:
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: fezz\r\n\r\n")
            check_equal(read_reply(stream).status, 200, "before SIGTERM")
            server.proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            wait_until(lambda: get(server.port, "/_health").status == 503, 1.0, "/_health failing")
            health = get(server.port, "/_health")
            check_equal(health.body, b"DRAINING", "/_health body while draining")
            check_equal(health.header("x-envoy-immediate-health-check-fail"), "true",
                        "the header Envoy acts on, on /_health")
            # The kept-alive connection and new ones are served as usual during the grace.
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: fezz\r\n\r\n")
            during = read_reply(stream)
            check_equal(during.status, 200, "a request on a kept-alive connection in the grace")
            check_equal(during.header("x-envoy-immediate-health-check-fail"), "true",
                        "the header on every answer")
            check_equal(during.header("connection"), None, "Connection: close in the grace")
            check_equal(get(server.port, "/users/3").status, 200, "a new connection in the grace")
            check(time.monotonic() - signalled < 1.5, "the checks above outlasted the grace")
            # After it: the idle connection closes, nothing new is accepted, the process ends.
            check(closed_after_wait(stream, 3.0), "the idle connection stayed open after the grace")
        finally:
            stream.close()
            sock.close()
        check_equal(server.proc.wait(timeout=5.0), 0, "exit status after the grace")
        check(time.monotonic() - signalled >= 1.5, "exited before the grace ended")


def closed_after_wait(stream, seconds):
    """True when the server closes the connection within `seconds`."""
    stream.raw._sock.settimeout(seconds)
    try:
        return stream.read(1) == b""
    except (ConnectionResetError, TimeoutError, OSError):
        return False


@test
def envoy_expected_timeout_shortens_the_deadline():
    started = time.monotonic()
    reply = get(SHARED.port, "/sleep?ms=1500", headers={"x-envoy-expected-rq-timeout-ms": "200"})
    took = time.monotonic() - started
    check_json_error(reply, 504, "a sleep past the proxy's deadline")
    check_equal(reply.json()["message"], "function 'sleep' did not answer within 200 ms", "message")
    check(took < 1.0, f"answered after {took:.2f} s, not at the proxy's 200 ms")
    # A deadline longer than the manifest's timeout does not lengthen it.
    longer = get(SHARED.port, "/sleep?ms=2500", headers={"x-envoy-expected-rq-timeout-ms": "60000"})
    check_equal(longer.json()["message"], "function 'sleep' did not answer within 2 s", "message")
    ignored = get(SHARED.port, "/sleep?ms=10", headers={"x-envoy-expected-rq-timeout-ms": "soon"})
    check_equal(ignored.status, 200, "a header that is not a number is ignored")


def start_shared_server():
    global SHARED
    SHARED = Server().start()


def shared_server_still_runs():
    if SHARED.proc.poll() is not None:
        print(f"FAIL the shared server exited with {SHARED.proc.returncode}; log:\n"
              f"{SHARED.log_tail()}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv, setup=start_shared_server, teardown=shared_server_still_runs))
