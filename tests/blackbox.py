"""Shared pieces of the black-box tests: a Fezz program as a child process,
raw and http.client HTTP helpers, checks, and a runner that prints one line a
test and ends with "N passed, N failed". Python standard library only.
"""

import atexit
import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 15.0  # seconds to wait for the "listening on" line
IO_TIMEOUT = 10.0  # every socket operation of the test is bounded by this

BINARY = None  # the program under test, set by run()
PROGRAMS = []  # the other programs the tests use, in the order run() was told


# ---------------------------------------------------------------------------
# The server under test


class Server:
    """fezz_example as a child process; the port comes from its stdout line."""

    _running = []

    def __init__(self, *args, env=None, port_flag=True, preexec_fn=None):
        self.args = list(args)
        self.env = env
        self.preexec_fn = preexec_fn  # runs in the child before it starts (limits, say)
        self.port_flag = port_flag
        self.proc = None
        self.port = None
        self.log = None

    def start(self):
        command = [BINARY, "--host", HOST]
        if self.port_flag:
            command += ["--port", "0"]
        command += self.args
        environment = dict(os.environ)
        environment.update(self.env or {})
        # Logs go to stderr: keep them in a file so a failure can show them.
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.log,
                                     env=environment, preexec_fn=self.preexec_fn)
        Server._running.append(self)
        lines = queue.Queue()
        threading.Thread(target=lambda: lines.put(self.proc.stdout.readline()),
                         daemon=True).start()
        try:
            line = lines.get(timeout=STARTUP_TIMEOUT).decode(errors="replace")
        except queue.Empty:
            self.stop()
            raise AssertionError(f"no 'listening on' line within {STARTUP_TIMEOUT} s")
        match = re.fullmatch(r"listening on http://127\.0\.0\.1:(\d+)\s*", line)
        if not match:
            self.stop()
            raise AssertionError(f"unexpected first stdout line {line!r}; log:\n{self.log_tail()}")
        self.port = int(match.group(1))
        return self

    def stop(self):
        """SIGTERM, so the server drains and leaves its store; SIGKILL after 10 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self in Server._running:
            Server._running.remove(self)

    def log_tail(self, lines=20):
        if self.log is None:
            return ""
        self.log.seek(0)
        return "\n".join(self.log.read().decode(errors="replace").splitlines()[-lines:])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @classmethod
    def stop_all(cls):
        for server in list(cls._running):
            server.stop()


atexit.register(Server.stop_all)


def free_port():
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def free_ports_in_a_row(count):
    """The first of `count` consecutive ports that are free at the moment."""
    for _ in range(100):
        first = free_port()
        try:
            for offset in range(1, count):
                with socket.socket() as probe:
                    probe.bind((HOST, first + offset))
            return first
        except OSError:
            continue
    raise RuntimeError(f"no {count} free ports in a row")


class Etcd:
    """Debian's etcd as a child process on loopback ports with a temporary data
    directory, stopped by its process id (SIGTERM, then SIGKILL)."""

    def __init__(self):
        self.client_port = free_port()
        self.peer_port = free_port()
        self.data = tempfile.TemporaryDirectory(prefix="fezz-etcd-")
        self.proc = None
        self.log = None

    @property
    def endpoint(self):
        return f"{HOST}:{self.client_port}"

    @property
    def url(self):
        """The store URL Fezz's programs take."""
        return f"etcd://{self.endpoint}"

    def start(self):
        client = f"http://{self.endpoint}"
        peer = f"http://{HOST}:{self.peer_port}"
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            ["etcd", "--name=fezz-test", f"--data-dir={self.data.name}/data",
             f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
             f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
             f"--initial-cluster=fezz-test={peer}", "--log-level=warn", "--logger=zap"],
            stdout=self.log, stderr=self.log)
        Etcd._running.append(self)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"etcd exited with {self.proc.returncode}")
            if self.ctl("endpoint", "health", check=False).returncode == 0:
                return self
            time.sleep(0.1)
        raise AssertionError(f"etcd not healthy within {STARTUP_TIMEOUT} s")

    def ctl(self, *args, check=True, input=None):
        """etcdctl against this etcd; its CompletedProcess."""
        result = subprocess.run(["etcdctl", f"--endpoints={self.endpoint}", *args],
                                capture_output=True, timeout=IO_TIMEOUT, input=input,
                                env=dict(os.environ, ETCDCTL_API="3"))
        if check and result.returncode != 0:
            raise AssertionError(f"etcdctl {' '.join(args)}: {result.stderr.decode()}")
        return result

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self in Etcd._running:
            Etcd._running.remove(self)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.data.cleanup()

    _running = []

    @classmethod
    def stop_all(cls):
        for etcd in list(cls._running):
            etcd.stop()


atexit.register(Etcd.stop_all)


# ---------------------------------------------------------------------------
# Checks


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def check_equal(actual, expected, what):
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


# ---------------------------------------------------------------------------
# HTTP helpers


class Reply:
    """One HTTP response: status, headers (names lower-cased), body bytes."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"Reply({self.status}, {self.headers}, {self.body[:200]!r})"


def call(port, method, path, body=None, headers=None, timeout=IO_TIMEOUT):
    """One request over a fresh http.client connection."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        conn.close()


def get(port, path, headers=None, timeout=IO_TIMEOUT):
    return call(port, "GET", path, headers=headers, timeout=timeout)


def metrics_of(port, function_id):
    reply = get(port, "/_metrics")
    check_equal(reply.status, 200, "GET /_metrics status")
    for entry in reply.json()["functions"]:
        if entry["id"] == function_id:
            return entry
    raise AssertionError(f"/_metrics lists no function {function_id!r}")


def wait_until(condition, seconds, what, interval=0.05):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"not within {seconds} s: {what}")


def raw_connection(port, timeout=IO_TIMEOUT):
    sock = socket.create_connection((HOST, port), timeout=timeout)
    return sock, sock.makefile("rb")


def send_ignoring_reset(sock, data):
    """The server may answer and close before it reads everything we send."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def read_reply(stream, head=False):
    """Reads one HTTP/1.1 response with a Content-Length (or none) from a socket file."""
    status_line = stream.readline(65536)
    check(status_line, "connection closed before a response")
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", status_line)
    check(match, f"not a status line: {status_line!r}")
    status = int(match.group(1))
    headers = {}
    while True:
        line = stream.readline(65536)
        check(line, "connection closed inside a response header")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = b""
    if not head and status >= 200 and status not in (204, 304):
        length = int(headers.get("content-length", "0"))
        body = stream.read(length)
        check_equal(len(body), length, "response body length")
    return Reply(status, headers, body)


def raw_exchange(port, data):
    """Sends raw bytes on a new connection and reads one response."""
    sock, stream = raw_connection(port)
    try:
        send_ignoring_reset(sock, data)
        return read_reply(stream)
    finally:
        stream.close()
        sock.close()


def check_json_error(reply, status, what):
    check_equal(reply.status, status, f"{what}: status")
    check(reply.header("content-type", "").startswith("application/json"),
          f"{what}: error body is not JSON ({reply.header('content-type')!r})")
    body = reply.json()
    for key in ("status", "error", "message"):
        check(key in body, f"{what}: JSON error body lacks {key!r}: {body}")
    check_equal(body["status"], status, f"{what}: JSON 'status'")
    check(body["message"], f"{what}: empty JSON 'message'")


def check_still_serving(port, after):
    reply = get(port, "/_health")
    check_equal((reply.status, reply.body), (200, b"OK"), f"GET /_health after {after}")


# ---------------------------------------------------------------------------
# Running


TESTS = []


def test(function):
    """Registers a test: a function that raises AssertionError on failure."""
    TESTS.append(function)
    return function


def run(argv, setup=None, teardown=None, programs=("program",)):
    """Runs every registered test against the program named in argv[1]; further
    programs the tests use (`programs` names them all) follow it, in PROGRAMS.

    `setup()` runs first (starting a shared server, say); an exception there
    fails every test. `teardown()` runs last and returns extra failures."""
    global BINARY
    if len(argv) != 1 + len(programs):
        print(f"usage: {argv[0]} " + " ".join(f"path/to/{p}" for p in programs), file=sys.stderr)
        return 2
    BINARY = os.path.abspath(argv[1])
    PROGRAMS.extend(os.path.abspath(p) for p in argv[2:])
    started = time.monotonic()
    passed, failed = 0, 0
    try:
        if setup is not None:
            try:
                setup()
            except (AssertionError, OSError) as e:
                print(f"FAIL starting {BINARY}: {e}")
                print(f"0 passed, {len(TESTS)} failed")
                return 1
        for function in TESTS:
            test_started = time.monotonic()
            try:
                function()
            except Exception as e:  # a failure, or an error of the test itself
                failed += 1
                kind = "" if isinstance(e, AssertionError) else f"{type(e).__name__}: "
                print(f"FAIL {function.__name__}: {kind}{e}", flush=True)
                if not isinstance(e, AssertionError):
                    traceback.print_exc()
            else:
                passed += 1
                print(f"ok   {function.__name__} ({time.monotonic() - test_started:.2f} s)",
                      flush=True)
        if teardown is not None:
            failed += teardown()
    finally:
        Server.stop_all()
    print(f"({time.monotonic() - started:.1f} s)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
