#!/usr/bin/env python3
"""fezz_example nodes on a real etcd, changed with etcdctl and fezzctl.

    python3 tests/control_plane_test.py path/to/fezz_example path/to/fezzctl

Starts Debian's etcd on loopback ports with a temporary data directory, then
fezz_example nodes on it: an entry written with plain etcdctl in the documented
format is served by every node, moved to one node with "nodes" only that node
serves it, removed every node answers 404; a node name in use is refused;
fezzctl's every command and exit status; etcd stopped and started again while
an entry changes. Prints "N passed, N failed". Python standard library only.
"""

import json
import pathlib

import blackbox
from blackbox import *  # noqa: F401,F403 (the helpers every test uses)

ETCD = None  # the etcd most tests use, started before the tests


def fezzctl(*args, input=None, store=None):
    """fezzctl on the shared etcd; its CompletedProcess (text)."""
    return subprocess.run([blackbox.PROGRAMS[0], "--store", store or ETCD.url, *args],
                          capture_output=True, timeout=30, input=input, text=True)


def node(name, *args):
    return Server("--store", ETCD.url, "--node", name, "--idle-timeout", "300", *args)


def status_of(server, path):
    return get(server.port, path, timeout=5).status


def eventually_status(servers, path, status, what, seconds=5.0):
    for server in servers:
        wait_until(lambda: status_of(server, path) == status, seconds,
                   f"{what}: {path} answers {status} on node {server.args[3]}")


def entry_key(function_id):
    return f"/fezz/functions/{function_id}"


@test
def an_etcdctl_entry_is_served_by_every_node_then_one_then_none():
    with node("n1") as n1, node("n2") as n2:
        entry = {"id": "hello", "version": "v2", "method": "GET", "path": "/greet",
                 "timeout": 5, "description": "written with etcdctl", "nodes": [],
                 "env": {"GREETING": "hi"}}
        ETCD.ctl("put", entry_key("hello"), json.dumps(entry))
        eventually_status([n1, n2], "/greet", 200, "written with etcdctl")
        for server in (n1, n2):
            check_equal(get(server.port, "/greet").body, b"Hello, World!", "the answer")
            check_equal(status_of(server, "/hello"), 404, "the old path")
            check_equal(metrics_of(server.port, "hello")["version"], "v2", "version in /_metrics")

        entry["nodes"] = ["n2"]
        ETCD.ctl("put", entry_key("hello"), json.dumps(entry))
        eventually_status([n1], "/greet", 404, "moved to n2")
        check_equal(status_of(n2, "/greet"), 200, "on n2")

        ETCD.ctl("del", entry_key("hello"))
        eventually_status([n1, n2], "/greet", 404, "removed")
    # Leave the store as the other tests expect it: the compiled-in entry back.
    ETCD.ctl("put", entry_key("hello"), json.dumps({"id": "hello", "path": "/hello"}))


@test
def a_fresh_store_serves_the_compiled_in_functions_at_once():
    with Etcd() as etcd:
        with Server("--store", etcd.url, "--node", "first") as server:
            check_equal(get(server.port, "/hello").body, b"Hello, World!", "GET /hello")
            listed = etcd.ctl("get", "--prefix", "--keys-only", "/fezz/functions/")
            keys = sorted(line for line in listed.stdout.decode().splitlines() if line)
            check_equal(keys, [entry_key(f) for f in ("counter", "echo", "hello", "sleep",
                                                      "user")], "entries made")
            store = get(server.port, "/_metrics").json()["store"]
            check_equal((store["kind"], store["connected"]), ("etcd", True), "store in /_metrics")


@test
def an_invalid_entry_is_skipped_counted_and_the_rest_served():
    with node("n1") as n1:
        ETCD.ctl("put", entry_key("broken"), "{not json")
        ETCD.ctl("put", entry_key("nopath"), json.dumps({"id": "nopath", "path": "relative"}))
        wait_until(lambda: get(n1.port, "/_metrics").json()["store"]["invalid_entries"] >= 2, 5.0,
                   "two invalid entries counted")
        check_equal(status_of(n1, "/hello"), 200, "the rest still served")
        text = get(n1.port, "/_metrics?format=prometheus").body.decode()
        check('fezz_store_invalid_entries_total{kind="etcd"}' in text, "the Prometheus family")
        ETCD.ctl("del", entry_key("broken"))
        ETCD.ctl("del", entry_key("nopath"))


@test
def a_node_name_in_use_is_refused_with_exit_1():
    with node("taken"):
        result = subprocess.run([blackbox.BINARY, "--host", HOST, "--port", "0", "--store",
                                 ETCD.url, "--node", "taken"], capture_output=True, timeout=30,
                                stdin=subprocess.DEVNULL)
        check_equal(result.returncode, 1, "exit status")
        check(b"a live node of that name exists" in result.stderr,
              f"the reason: {result.stderr.decode()!r}")
    # Gone with its owner: the name is free once the first node left.
    with node("taken") as again:
        check_equal(status_of(again, "/_health"), 200, "the name reused after a clean exit")


@test
def a_node_registers_marks_itself_draining_and_leaves():
    with node("member", "--drain-grace", "1") as member:
        nodes = fezzctl("nodes")
        check_equal(nodes.returncode, 0, "fezzctl nodes exit status")
        line = next((l for l in nodes.stdout.splitlines() if l.startswith("member ")), None)
        check(line is not None and "serving" in line and f":{member.port}" in line,
              f"member in fezzctl nodes: {nodes.stdout!r}")
        member.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: "draining" in fezzctl("nodes").stdout, 1.0, "marked draining")
        check_equal(member.proc.wait(timeout=10), 0, "exit status")
        check("member " not in fezzctl("nodes").stdout, "the record is gone after exit")


@test
def fezzctl_every_command_and_its_exit_status():
    entry = {"id": "greet", "path": "/hi/:name", "max_concurrency": 3}
    watcher = subprocess.Popen([blackbox.PROGRAMS[0], "--store", ETCD.url, "watch"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # the watch is on once fezzctl has listed
        put = fezzctl("put", "-", input=json.dumps(entry))
        check_equal((put.returncode, put.stderr), (0, ""), "put")
        got = fezzctl("get", "greet")
        check_equal(got.returncode, 0, "get")
        stored = json.loads(got.stdout)
        check_equal((stored["path"], stored["max_concurrency"]), ("/hi/:name", 3), "get's entry")
        revision = stored["revision"]

        stale = fezzctl("put", "-", "--if-revision", str(revision - 1),
                        input=json.dumps(entry))
        check_equal(stale.returncode, 1, "put with a stale revision")
        check(stale.stderr.startswith("fezzctl: revision conflict:"), f"why: {stale.stderr!r}")
        entry["path"] = "/hello/:name"
        cas = fezzctl("put", "-", "--if-revision", str(revision), input=json.dumps(entry))
        check_equal(cas.returncode, 0, f"put with the current revision: {cas.stderr}")
        again = fezzctl("put", "-", "--if-revision", "0", input=json.dumps(entry))
        check_equal(again.returncode, 1, "create when it exists")

        invalid = fezzctl("put", "-", input='{"id":"x","timeout":-1}')
        check_equal(invalid.returncode, 1, "an invalid entry")
        check_equal(invalid.stderr.strip(),
                    "fezzctl: invalid entry: invalid manifest: timeout must be positive", "why")

        listed = fezzctl("list", "--json")
        ids = [e["id"] for e in json.loads(listed.stdout)]
        check("greet" in ids and "hello" in ids, f"list --json: {ids}")
        check("/hello/:name" in fezzctl("list").stdout, "list's table")

        check_equal(fezzctl("rm", "greet").returncode, 0, "rm")
        missing = fezzctl("rm", "greet")
        check_equal((missing.returncode, missing.stderr.strip()), (1, "fezzctl: not found: 'greet'"),
                    "rm again")
        check_equal(fezzctl("get", "greet").returncode, 1, "get after rm")
        check_equal(fezzctl("frobnicate").returncode, 2, "an unknown command")
        usage = fezzctl("--help")
        check_equal(usage.returncode, 0, "--help")
        readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
        check(usage.stdout in readme, "README.md holds fezzctl's usage as --help prints it")
        check_equal(fezzctl("get").returncode, 2, "get without an id")
        unreachable = fezzctl("list", store=f"etcd://{HOST}:{free_port()}")
        check_equal(unreachable.returncode, 1, "an unreachable store")
        check("cannot be reached" in unreachable.stderr, f"why: {unreachable.stderr!r}")
        time.sleep(0.5)
    finally:
        watcher.send_signal(signal.SIGINT)
        out, _ = watcher.communicate(timeout=10)
    events = [json.loads(line) for line in out.splitlines()]
    greet = [(e["type"], e["entry"]["path"]) for e in events if e["id"] == "greet"]
    check_equal(greet, [("added", "/hi/:name"), ("updated", "/hello/:name"),
                        ("removed", "/hello/:name")], "watch's events for greet")


@test
def etcd_stopped_then_back_the_node_serves_what_it_knew_then_the_change():
    with Etcd() as etcd:
        with Server("--store", etcd.url, "--node", "solo") as solo:
            etcd.stop()
            check_equal(status_of(solo, "/hello"), 200, "serving with etcd down")
            check_equal(status_of(solo, "/_health"), 200, "/_health with etcd down")
            wait_until(lambda: not get(solo.port, "/_metrics").json()["store"]["connected"], 15.0,
                       "the store says it is not connected")
            etcd.start()
            etcd.ctl("put", entry_key("hello"), json.dumps({"id": "hello", "path": "/back"}))
            wait_until(lambda: status_of(solo, "/back") == 200, 20.0, "the change after etcd came back")
            check_equal(status_of(solo, "/hello"), 404, "the old route")
            check(get(solo.port, "/_metrics").json()["store"]["reconnects"] >= 1, "reconnects counted")


def start_etcd():
    global ETCD
    ETCD = Etcd().start()


if __name__ == "__main__":
    sys.exit(run(sys.argv, setup=start_etcd, programs=("fezz_example", "fezzctl")))
