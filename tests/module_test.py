#!/usr/bin/env python3
"""Function modules in fezz_example: loaded on the first request, gone from the
process when idle, replaced without a restart, refused when wrong.

    python3 tests/module_test.py path/to/fezz_example path/to/modules

The modules are tests/module/greeting.cpp built with fezz_add_module() against
the installed package (the CTest fezz_package_module): greeting_v1.so,
greeting_v2.so and greeting_other_abi.so. Starts Debian's etcd on loopback and
writes each entry with etcdctl, in the documented format with its "module".
Whether a library is in the process is read from /proc/PID/maps. Prints
"N passed, N failed". Python standard library only.
"""

import hashlib
import http.client
import json
import pathlib

import blackbox
from blackbox import *  # noqa: F401,F403 (the helpers every test uses)

ETCD = None


def module(name):
    path = pathlib.Path(blackbox.PROGRAMS[0]) / f"{name}.so"
    return {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "path": str(path)}


def put(function_id, path, source):
    ETCD.ctl("put", f"/fezz/functions/{function_id}",
             json.dumps({"id": function_id, "path": path, "module": source}))


def node(name, cache, *flags):
    return Server("--store", ETCD.url, "--node", name, "--idle-timeout", "0.5",
                  "--module-cache", cache, *flags)


def mapped(server, sha256):
    """Whether the module with these bytes is mapped into the server's process."""
    return f"{sha256}.so" in pathlib.Path(f"/proc/{server.proc.pid}/maps").read_text()


@test
def a_module_loads_on_its_first_request_and_leaves_the_process_when_idle():
    v1 = module("greeting_v1")
    with tempfile.TemporaryDirectory() as cache, node("m1", cache) as server:
        put("greeting", "/greeting", v1)
        put("nap", "/nap", v1)
        wait_until(lambda: metrics_has(server, "greeting"), 5.0, "the entry reaches the node")
        check(not mapped(server, v1["sha256"]), "nothing is loaded before the first request")
        reply = get(server.port, "/greeting")
        check_equal((reply.status, reply.body), (200, b"Hello from module v1, call 1, env none"),
                    "the first answer")
        check(mapped(server, v1["sha256"]), "the library is mapped once a function is loaded")
        check_equal(metrics_of(server.port, "greeting").get("module"), v1["sha256"],
                    "/_metrics names the module")
        check_equal(get(server.port, "/nap").body, b"rested, v1", "a coroutine fetch of the module")
        check_equal(get(server.port, "/greeting").body, b"Hello from module v1, call 2, env none",
                    "the same instance")
        # Both functions idle past 0.5 s: unloaded, and the library closed.
        wait_until(lambda: not mapped(server, v1["sha256"]), 10.0, "the library leaves the process")
        check_equal(metrics_of(server.port, "greeting")["loaded"], False, "greeting unloaded")
        check_equal(get(server.port, "/greeting").body, b"Hello from module v1, call 1, env none",
                    "loaded anew")
        check((pathlib.Path(cache) / f"{v1['sha256']}.so").exists(), "kept in the module cache")
        ETCD.ctl("del", "/fezz/functions/greeting")
        ETCD.ctl("del", "/fezz/functions/nap")
        wait_until(lambda: get(server.port, "/greeting").status == 404, 5.0, "removed: 404")
        wait_until(lambda: not mapped(server, v1["sha256"]), 10.0, "removed: the library is gone")


@test
def a_new_version_replaces_the_old_under_load_without_a_failed_request():
    v1, v2 = module("greeting_v1"), module("greeting_v2")
    with tempfile.TemporaryDirectory() as cache, node("m2", cache) as server:
        put("greeting", "/greeting", v1)
        wait_until(lambda: get(server.port, "/greeting").status == 200, 5.0, "v1 serves")
        answers = {}
        stop = threading.Event()

        def client():
            conn = http.client.HTTPConnection(HOST, server.port, timeout=IO_TIMEOUT)
            while not stop.is_set():
                conn.request("GET", "/greeting")
                response = conn.getresponse()
                key = (response.status, response.read().split(b",")[0])
                answers[key] = answers.get(key, 0) + 1
            conn.close()

        thread = threading.Thread(target=client)
        thread.start()
        try:
            time.sleep(0.3)
            put("greeting", "/greeting", v2)
            wait_until(lambda: (200, b"Hello from module v2") in answers, 5.0, "v2 answers")
            time.sleep(0.3)
        finally:
            stop.set()
            thread.join(timeout=10)
        print(f"     answers during the switch: {answers}")
        check_equal(set(answers), {(200, b"Hello from module v1"), (200, b"Hello from module v2")},
                    "every answer is v1 or v2, none failed")
        wait_until(lambda: not mapped(server, v1["sha256"]), 10.0, "v1 leaves the process")
        check(mapped(server, v2["sha256"]) or get(server.port, "/greeting").status == 200,
              "v2 serves on")
        ETCD.ctl("del", "/fezz/functions/greeting")


@test
def bytes_that_do_not_match_their_sha256_are_never_opened():
    v1, v2 = module("greeting_v1"), module("greeting_v2")
    forged = {"sha256": v2["sha256"], "path": v1["path"]}  # v1's bytes under v2's name
    with tempfile.TemporaryDirectory() as cache, node("m3", cache) as server:
        put("greeting", "/greeting", forged)
        wait_until(lambda: get(server.port, "/greeting").status != 404, 5.0, "routed")
        message = refusal(get(server.port, "/greeting"), "forged bytes")
        check(f"has SHA-256 {v1['sha256']}, not the {v2['sha256']}" in message, message)
        check(not mapped(server, v1["sha256"]) and not mapped(server, v2["sha256"]),
              "nothing was opened")
        check_equal(list(pathlib.Path(cache).glob("*")), [], "nothing was cached")
        check_equal(get(server.port, "/hello").status, 200, "the host serves on")
        ETCD.ctl("del", "/fezz/functions/greeting")


@test
def a_module_over_max_module_bytes_is_refused_before_it_is_read():
    v1 = module("greeting_v1")
    size = pathlib.Path(v1["path"]).stat().st_size
    with tempfile.TemporaryDirectory() as cache, \
            node("m6", cache, "--max-module-bytes", str(size - 1)) as server:
        put("greeting", "/greeting", v1)
        wait_until(lambda: get(server.port, "/greeting").status != 404, 5.0, "routed")
        message = refusal(get(server.port, "/greeting"), "a module over the limit")
        check(f"is {size} bytes, over the limit of {size - 1} bytes (config::max_module_bytes)"
              in message, message)
        check(not mapped(server, v1["sha256"]), "nothing was opened")
        check_equal(list(pathlib.Path(cache).glob("*")), [], "nothing was cached")
        ETCD.ctl("del", "/fezz/functions/greeting")
    with tempfile.TemporaryDirectory() as cache, \
            node("m7", cache, "--max-module-bytes", str(size)) as server:
        put("greeting", "/greeting", v1)
        wait_until(lambda: get(server.port, "/greeting").status != 404, 5.0, "routed")
        check_equal(get(server.port, "/greeting").status, 200, "exactly the limit: it loads")
        ETCD.ctl("del", "/fezz/functions/greeting")


@test
def a_module_built_differently_is_refused_with_the_reason():
    other = module("greeting_other_abi")
    with tempfile.TemporaryDirectory() as cache, node("m4", cache) as server:
        put("greeting", "/greeting", other)
        wait_until(lambda: get(server.port, "/greeting").status != 404, 5.0, "routed")
        message = refusal(get(server.port, "/greeting"), "another ABI")
        check('was built with "fezz module ABI 999;' in message, message)
        check("rebuild it against this host's Fezz" in message, message)
        check(get(server.port, "/greeting").status == 503, "refused again, never half-loaded")
        failures = metrics_of(server.port, "greeting")["load_failures"]
        check(failures >= 2, f"each refusal counted ({failures})")
        check(not mapped(server, other["sha256"]), "closed again")
        check_equal(get(server.port, "/hello").status, 200, "the host serves on")
        ETCD.ctl("del", "/fezz/functions/greeting")


@test
def an_entry_naming_a_function_the_module_lacks_is_refused():
    v1 = module("greeting_v1")
    with tempfile.TemporaryDirectory() as cache, node("m5", cache) as server:
        put("farewell", "/farewell", v1)
        wait_until(lambda: get(server.port, "/farewell").status != 404, 5.0, "routed")
        message = refusal(get(server.port, "/farewell"), "no such function")
        check("has no function 'farewell' (it has: greeting, nap)" in message, message)
        ETCD.ctl("del", "/fezz/functions/farewell")


def refusal(reply, what):
    """The message of a 503 with Fezz's JSON error body."""
    check_json_error(reply, 503, what)
    return reply.json()["message"]


def metrics_has(server, function_id):
    return any(f["id"] == function_id for f in get(server.port, "/_metrics").json()["functions"])


def start_etcd():
    global ETCD
    ETCD = Etcd().start()


if __name__ == "__main__":
    sys.exit(run(sys.argv, setup=start_etcd, programs=("fezz_example", "modules")))
