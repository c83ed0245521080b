// etcd_store against a real etcd 3.4 that the tests start themselves on loopback. Faults
// are real: etcd is stopped and restarted, the link is cut with a TCP relay, history is
// compacted, leases are revoked behind the store's back.

#include <fezz/detail/base64.hpp>
#include <fezz/etcd_store.hpp>

#include "support/etcd_process.hpp"
#include "support/tcp_relay.hpp"

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using kind = fezz::store_event::kind;
using fezz::test::etcd_process;

namespace {

fezz::function_entry make_entry(const std::string& id, const std::string& version = "v1") {
  return fezz::function_entry{fezz::owned_manifest{id, version, "GET", "/" + id}};
}

// Polls `condition` every 20 ms until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 15s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// A logger that keeps its last lines, so a test can count what was logged.
struct captured_log {
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> lines =
      std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
  std::shared_ptr<spdlog::logger> logger;

  captured_log() {
    auto console = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    console->set_level(spdlog::level::warn);
    logger = std::make_shared<spdlog::logger>("etcd-test", spdlog::sinks_init_list{lines, console});
    logger->set_level(spdlog::level::debug);
  }

  std::size_t count(const std::string& needle) const {
    const auto all = lines->last_formatted();
    return static_cast<std::size_t>(std::count_if(all.begin(), all.end(), [&](const auto& line) {
      return line.find(needle) != std::string::npos;
    }));
  }
};

fezz::etcd_options options_for(const std::string& endpoint, const std::string& prefix,
                               std::shared_ptr<spdlog::logger> logger = nullptr) {
  fezz::etcd_options options;
  options.endpoints = {endpoint};
  options.prefix = prefix;
  options.connect_timeout = 1000ms;
  options.request_timeout = 3000ms;
  options.backoff_initial = 50ms;
  options.backoff_max = 400ms;
  options.lease_ttl = 3s;
  options.initial_sync_timeout = 10s;
  options.logger = logger ? logger : captured_log().logger;
  return options;
}

// Every event a store delivers, from its delivery thread.
struct recorder {
  mutable std::mutex mutex;
  std::vector<fezz::store_event> events;
  fezz::subscription subscription;

  explicit recorder(fezz::function_store& store)
      : subscription(store.watch([this](const fezz::store_event& e) {
          std::lock_guard lock(mutex);
          events.push_back(e);
        })) {}
  recorder(const recorder&) = delete;
  recorder& operator=(const recorder&) = delete;

  std::vector<std::string> summary() const {
    std::lock_guard lock(mutex);
    std::vector<std::string> result;
    for (const auto& e : events) {
      result.push_back(std::string(fezz::to_string(e.type)) + " " + e.entry.id());
    }
    return result;
  }
  std::size_t size() const {
    std::lock_guard lock(mutex);
    return events.size();
  }
  // The entries that replaying the events onto `start` gives.
  std::map<std::string, fezz::function_entry> replay(
      std::map<std::string, fezz::function_entry> start) const {
    std::lock_guard lock(mutex);
    for (const auto& e : events) {
      if (e.type == kind::removed) {
        start.erase(e.entry.id());
      } else {
        start.insert_or_assign(e.entry.id(), e.entry);
      }
    }
    return start;
  }
};

std::map<std::string, fezz::function_entry> as_map(const std::vector<fezz::function_entry>& list) {
  std::map<std::string, fezz::function_entry> result;
  for (const auto& e : list) {
    result.emplace(e.id(), e);
  }
  return result;
}

// What etcd holds under <prefix>functions/, read with etcdctl: the valid entries, each
// with its mod_revision, and etcd's revision.
struct etcd_state {
  std::int64_t revision = 0;
  std::map<std::string, fezz::function_entry> entries;
};

etcd_state read_etcd(const etcd_process& etcd, const std::string& prefix) {
  const auto out = etcd.must_ctl("get --prefix " + prefix + "functions/ -w json");
  const auto j = nlohmann::json::parse(out);
  etcd_state state;
  state.revision = j.at("header").at("revision").get<std::int64_t>();
  if (j.contains("kvs")) {
    for (const auto& kv : j.at("kvs")) {
      const auto key = *fezz::detail::base64_decode(kv.at("key").get<std::string>());
      const auto value = *fezz::detail::base64_decode(kv.value("value", std::string()));
      const auto id = key.substr((prefix + "functions/").size());
      auto parsed = fezz::parse_function_entry(value, id);
      if (parsed) {
        parsed.value().revision = kv.at("mod_revision").get<std::int64_t>();
        state.entries.emplace(id, parsed.value());
      }
    }
  }
  return state;
}

// The cache equals etcd: same entries, same content, same revisions.
void require_same(const fezz::etcd_store& store, const etcd_state& state) {
  const auto cached = as_map(store.list());
  REQUIRE(cached.size() == state.entries.size());
  for (const auto& [id, entry] : state.entries) {
    INFO("entry " << id);
    REQUIRE(cached.contains(id));
    CHECK(cached.at(id) == entry);
    CHECK(cached.at(id).revision == entry.revision);
  }
}

// One etcd shared by the tests that do not stop it; each test uses a prefix of its own.
etcd_process& shared_etcd() {
  static etcd_process etcd;
  return etcd;
}

}  // namespace

TEST_CASE("etcd_store: register, get, list, remove and watch", "[etcd]") {
  auto& etcd = shared_etcd();
  const std::string prefix = "/crud/";
  // The first endpoint refuses connections: the store fails over to the second.
  auto options = options_for("127.0.0.1:" + std::to_string(fezz::test::free_port()), prefix);
  options.endpoints.push_back(etcd.endpoint());
  fezz::etcd_store store(options);
  fezz::etcd_store other(options_for(etcd.endpoint(), prefix));
  recorder log(store);
  recorder other_log(other);

  CHECK(store.list().empty());
  CHECK(store.status().kind == "etcd");
  CHECK(store.status().connected);
  CHECK(store.status().endpoints.size() == 2);

  auto hello = make_entry("hello").on_node("n1").with_env("GREETING", "hi");
  hello.manifest.timeout = 7s;
  store.register_function(hello);
  // The write returns once the cache has it, and the watchers have seen it.
  const auto stored = store.get("hello");
  REQUIRE(stored);
  CHECK(*stored == hello);
  CHECK(stored->revision > 0);
  CHECK(log.summary() == std::vector<std::string>{"added hello"});

  // The value is store_format's, readable by any etcd client.
  const auto raw = etcd.must_ctl("get --print-value-only " + prefix + "functions/hello");
  CHECK(
      fezz::parse_function_entry(raw.substr(0, raw.find_last_not_of('\n') + 1), "hello").value() ==
      hello);

  store.register_function(make_entry("world"));
  store.register_function(make_entry("hello", "v2"));
  store.register_function(make_entry("hello", "v2"));  // unchanged: no event
  CHECK(store.get("hello")->manifest.version == "v2");
  CHECK(store.list().size() == 2);
  CHECK(store.list().front().id() == "hello");

  CHECK(store.remove("world"));
  CHECK_FALSE(store.remove("world"));
  CHECK_FALSE(store.get("world"));
  const std::vector<std::string> expected{"added hello", "added world", "updated hello",
                                          "removed world"};
  CHECK(log.summary() == expected);
  REQUIRE(log.size() == 4);
  CHECK(log.events[3].entry.id() == "world");  // the removed entry as it was
  CHECK(log.events[3].entry.revision > log.events[2].entry.revision);

  // Another store on the same etcd sees the same changes, in the same order.
  REQUIRE(eventually([&] { return other_log.size() == expected.size(); }));
  CHECK(other_log.summary() == expected);
  CHECK(other.list() == store.list());
  CHECK(other.get("hello")->revision == store.get("hello")->revision);

  // A change made with plain etcdctl reaches both.
  etcd.must_ctl("put " + prefix + "functions/raw " +
                fezz::test::shell_quote(R"({"id":"raw","path":"/raw","timeout":5})"));
  REQUIRE(eventually([&] { return store.get("raw") && other.get("raw"); }));
  CHECK(store.get("raw")->manifest.timeout == 5s);
  CHECK(store.status().seconds_since_last_event >= 0);
  require_same(store, read_etcd(etcd, prefix));

  // Invalid manifests are refused before anything is written.
  auto bad = make_entry("bad");
  bad.manifest.path = "nope";
  CHECK_THROWS_WITH(store.register_function(bad),
                    Catch::Matchers::Contains("path must start with '/'"));
  CHECK(etcd.must_ctl("get --keys-only --prefix " + prefix + "functions/bad").empty());
}

TEST_CASE("etcd_store: a 20 KB entry crosses the watch stream whole", "[etcd]") {
  auto& etcd = shared_etcd();
  const std::string prefix = "/big/";
  fezz::etcd_store writer(options_for(etcd.endpoint(), prefix));
  fezz::etcd_store reader(options_for(etcd.endpoint(), prefix));
  recorder log(reader);
  // etcd writes a message this large as one chunk and its newline as the next.
  const auto big = make_entry("big").with_env("BLOB", std::string(20000, 'a'));
  writer.register_function(big);
  REQUIRE(eventually([&] { return log.size() == 1; }));
  CHECK(reader.get("big") == big);
}

TEST_CASE("etcd_store: module code in chunks, outside what nodes follow", "[etcd]") {
  auto& etcd = shared_etcd();
  const std::string prefix = "/code/";
  fezz::etcd_store writer(options_for(etcd.endpoint(), prefix));
  fezz::etcd_store reader(options_for(etcd.endpoint(), prefix));
  recorder log(reader);
  // Three chunks, every byte value, so nothing survives a wrong encoding.
  std::string bytes(fezz::module_chunk_bytes * 2 + 1000, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<char>((i * 7 + i / 256) & 0xff);
  }
  const std::string sha(64, 'c');
  CHECK(reader.get_module(sha, 1 << 30) == std::nullopt);
  writer.put_module(sha, bytes);
  CHECK(etcd.must_ctl("get --keys-only --prefix " + prefix + "code/" + sha).find(sha + "/2") !=
        std::string::npos);
  CHECK(reader.get_module(sha, 1 << 30) == bytes);
  CHECK(reader.get_module(sha, bytes.size()) == bytes);
  CHECK_THROWS_WITH(reader.get_module(sha, bytes.size() - 1),
                    Catch::Matchers::Contains("over the limit of"));
  writer.put_module(sha, bytes);  // held already: nothing written again

  // A chunk gone (or a record that lies) is an error, never a short module.
  etcd.must_ctl("del " + prefix + "code/" + sha + "/1");
  CHECK_THROWS_WITH(reader.get_module(sha, 1 << 30),
                    Catch::Matchers::Contains("chunk 1 is missing"));

  // None of it reached the cache or its watchers.
  writer.register_function(make_entry("after"));
  REQUIRE(eventually([&] { return log.size() == 1; }));
  CHECK(reader.status().invalid_entries == 0);
  CHECK(reader.list().size() == 1);
}

TEST_CASE("etcd_store: create-if-absent and compare-and-swap never overwrite silently", "[etcd]") {
  auto& etcd = shared_etcd();
  const std::string prefix = "/cas/";
  fezz::etcd_store first(options_for(etcd.endpoint(), prefix));
  fezz::etcd_store second(options_for(etcd.endpoint(), prefix));

  CHECK(first.create(make_entry("fn", "v1")));
  REQUIRE(second.wait_for_revision(first.get("fn")->revision, 5000ms));
  CHECK_FALSE(second.create(make_entry("fn", "other")));
  CHECK(first.get("fn")->manifest.version == "v1");

  // Both read revision R; the first swap wins, the second conflicts.
  const auto read = *second.get("fn");
  CHECK(first.compare_and_swap(make_entry("fn", "v2"), read.revision));
  CHECK_FALSE(second.compare_and_swap(make_entry("fn", "v3"), read.revision));
  REQUIRE(second.wait_for_revision(first.get("fn")->revision, 5000ms));
  CHECK(second.get("fn")->manifest.version == "v2");
  CHECK(second.compare_and_swap(make_entry("fn", "v3"), second.get("fn")->revision));
  CHECK(second.get("fn")->manifest.version == "v3");

  CHECK_FALSE(first.compare_and_swap(make_entry("absent"), 0));
  CHECK_FALSE(first.compare_and_swap(make_entry("absent"), 1));
  CHECK_FALSE(first.get("absent"));
  CHECK(etcd.ctl("get --print-value-only " + prefix + "functions/absent").output.empty());

  auto bad = make_entry("fn");
  bad.manifest.method = "get";
  CHECK_THROWS_AS(first.create(bad), fezz::store_error);
  CHECK_THROWS_AS(first.compare_and_swap(bad, first.get("fn")->revision), fezz::store_error);
}

TEST_CASE("etcd_store: invalid entries are skipped, logged once and counted", "[etcd]") {
  auto& etcd = shared_etcd();
  const std::string prefix = "/invalid/";
  const std::string functions = prefix + "functions/";
  etcd.must_ctl("put " + functions + "good " + fezz::test::shell_quote(R"({"id":"good"})"));
  etcd.must_ctl("put " + functions + "garbage " + fezz::test::shell_quote("not json {"));
  etcd.must_ctl("put " + functions + "badpath " +
                fezz::test::shell_quote(R"({"id":"badpath","path":"x"})"));
  etcd.must_ctl("put " + functions + "mismatch " + fezz::test::shell_quote(R"({"id":"other"})"));

  captured_log log;
  fezz::etcd_store store(options_for(etcd.endpoint(), prefix, log.logger));
  recorder events(store);
  CHECK(store.list().size() == 1);
  CHECK(store.get("good"));
  CHECK(store.status().invalid_entries == 3);
  CHECK(log.count("skipping " + functions + "garbage") == 1);
  CHECK(log.count("not JSON") == 1);
  CHECK(log.count("invalid manifest: path must start with '/'") == 1);
  CHECK(log.count("but the key names 'mismatch'") == 1);

  // A valid entry overwritten with garbage stops being served; fixed, it is back.
  etcd.must_ctl("put " + functions + "good " +
                fezz::test::shell_quote(R"({"id":"good","timeout":"x"})"));
  REQUIRE(eventually([&] { return !store.get("good"); }));
  CHECK(store.status().invalid_entries == 4);
  CHECK(log.count("field 'timeout' must be a whole number of seconds") == 1);
  etcd.must_ctl("put " + functions + "good " +
                fezz::test::shell_quote(R"({"id":"good","version":"v9"})"));
  REQUIRE(eventually([&] { return store.get("good").has_value(); }));
  CHECK(store.get("good")->manifest.version == "v9");
  // The cache has the change before the delivery thread hands its event to watchers.
  REQUIRE(store.wait_for_revision(read_etcd(etcd, prefix).revision, 5000ms));
  CHECK(events.summary() == std::vector<std::string>{"removed good", "added good"});

  // A second reader counts them too, and other entries are still served.
  fezz::etcd_store again(options_for(etcd.endpoint(), prefix));
  CHECK(again.status().invalid_entries == 3);
  CHECK(again.list().size() == 1);
}

TEST_CASE("etcd_store: etcd stopped and restarted", "[etcd]") {
  etcd_process etcd;
  const std::string prefix = "/restart/";
  captured_log log;
  fezz::etcd_store store(options_for(etcd.endpoint(), prefix, log.logger));
  recorder events(store);
  store.register_function(make_entry("kept"));
  store.register_function(make_entry("doomed"));
  const auto before = store.list();

  etcd.stop();
  REQUIRE(store.wait_for_connected(false, 10000ms));
  // The last known state is served meanwhile; writes fail with a reason.
  CHECK(store.list() == before);
  CHECK(store.get("kept"));
  CHECK_THROWS_WITH(
      store.register_function(make_entry("new")),
      Catch::Matchers::Contains("cannot register") || Catch::Matchers::Contains("cannot write"));
  std::this_thread::sleep_for(500ms);  // a few reconnect attempts fail
  CHECK(store.list() == before);
  CHECK_FALSE(store.status().connected);

  etcd.start();
  // Changes made while the store was away are applied once it is back.
  etcd.must_ctl("put " + prefix + "functions/while-away " +
                fezz::test::shell_quote(R"({"id":"while-away","path":"/w"})"));
  etcd.must_ctl("del " + prefix + "functions/doomed");
  REQUIRE(eventually([&] { return store.get("while-away") && !store.get("doomed"); }));
  REQUIRE(store.wait_for_connected(true, 10000ms));
  CHECK(store.status().reconnects >= 1);
  const auto state = read_etcd(etcd, prefix);
  REQUIRE(store.wait_for_revision(state.revision, 5000ms));
  require_same(store, state);
  CHECK(events.summary() == std::vector<std::string>{"added kept", "added doomed",
                                                     "added while-away", "removed doomed"});
  CHECK(log.count("lost etcd") >= 1);

  store.register_function(make_entry("after"));
  CHECK(store.get("after"));
}

TEST_CASE("etcd_store: the link cut while entries change and history is compacted", "[etcd]") {
  etcd_process etcd;
  fezz::test::tcp_relay relay(etcd.client_port());
  const std::string prefix = "/cut/";
  const std::string functions = prefix + "functions/";
  captured_log log;
  fezz::etcd_store store(
      options_for("http://127.0.0.1:" + std::to_string(relay.port()), prefix, log.logger));
  fezz::etcd_store writer(options_for(etcd.endpoint(), prefix));
  for (int i = 0; i < 6; ++i) {
    writer.register_function(make_entry("fn-" + std::to_string(i)));
  }
  REQUIRE(store.wait_for_revision(writer.status().revision, 5000ms));
  const auto start = as_map(store.list());
  REQUIRE(start.size() == 6);
  recorder events(store);

  SECTION("a DELETE at exactly the compaction revision is not lost (etcd #18089)") {
    relay.cut();
    REQUIRE(store.wait_for_connected(false, 10000ms));
    // The store last saw revision R; the delete is R+1, and history is compacted at R+1,
    // so a watch resumed at R+1 would not see the delete on etcd 3.4.23.
    const auto seen = store.status().revision;
    CHECK(writer.remove("fn-0"));
    const auto state = read_etcd(etcd, prefix);
    REQUIRE(state.revision == seen + 1);
    etcd.must_ctl("compact " + std::to_string(state.revision));
    CHECK(store.list().size() == 6);  // still the last known state
    CHECK(store.get("fn-0"));

    relay.restore();
    REQUIRE(store.wait_for_revision(state.revision, 15000ms));
    require_same(store, state);
    CHECK_FALSE(store.get("fn-0"));
    CHECK(store.status().resyncs == 1);
    CHECK(events.summary() == std::vector<std::string>{"removed fn-0"});
  }

  SECTION("many changes and a compaction while cut") {
    relay.cut();
    REQUIRE(store.wait_for_connected(false, 10000ms));
    for (int round = 0; round < 3; ++round) {
      writer.register_function(make_entry("fn-1", "v" + std::to_string(round + 2)));
      writer.register_function(make_entry("new-" + std::to_string(round)));
      CHECK(writer.remove("fn-" + std::to_string(round + 2)));
    }
    writer.register_function(make_entry("new-0", "v2"));
    CHECK(writer.remove("new-1"));
    etcd.must_ctl("put " + functions + "fn-5 " + fezz::test::shell_quote("broken"));
    CHECK(store.list().size() == 6);  // the last known state, meanwhile
    const auto compact_at = read_etcd(etcd, prefix).revision - 2;
    etcd.must_ctl("compact " + std::to_string(compact_at));
    writer.register_function(make_entry("after-compaction"));

    relay.restore();
    const auto state = read_etcd(etcd, prefix);
    REQUIRE(store.wait_for_revision(state.revision, 15000ms));
    require_same(store, state);
    CHECK(store.status().resyncs == 1);
    CHECK(store.status().invalid_entries == 1);
    CHECK(log.count("listing again") >= 1);
    // The events delivered turn the old state into the new one.
    CHECK(events.replay(start) == state.entries);
    CHECK(relay.connections_made() >= 2);
  }

  SECTION("a cut without compaction resumes the watch without re-listing") {
    relay.cut();
    REQUIRE(store.wait_for_connected(false, 10000ms));
    writer.register_function(make_entry("during"));
    CHECK(writer.remove("fn-5"));
    relay.restore();
    const auto state = read_etcd(etcd, prefix);
    REQUIRE(store.wait_for_revision(state.revision, 15000ms));
    require_same(store, state);
    CHECK(store.status().resyncs == 0);
    CHECK(store.status().reconnects >= 1);
    CHECK(events.summary() == std::vector<std::string>{"added during", "removed fn-5"});
  }
}

TEST_CASE("etcd_store: node membership refuses a duplicate name and follows state", "[etcd]") {
  auto& etcd = shared_etcd();
  const std::string prefix = "/members/";
  fezz::etcd_store a(options_for(etcd.endpoint(), prefix));
  fezz::etcd_store b(options_for(etcd.endpoint(), prefix));
  const fezz::node_record n1{"n1", "http://127.0.0.1:8081", "serving", "2026-12-01T21:30:00Z",
                             "0.1.0"};

  CHECK_THROWS_AS(a.set_node_state("draining"), fezz::store_error);  // not joined
  a.join(n1);
  CHECK(a.nodes() == std::vector<fezz::node_record>{n1});
  REQUIRE(eventually([&] { return b.nodes().size() == 1; }));
  CHECK_THROWS_WITH(b.join(n1), Catch::Matchers::Contains("'n1'") &&
                                    Catch::Matchers::Contains("a live node of that name exists"));
  CHECK_THROWS_WITH(a.join({"n9", "", "serving", "", ""}),
                    Catch::Matchers::Contains("already joined as 'n1'"));
  CHECK_THROWS_AS(a.join({"bad/name", "", "serving", "", ""}), fezz::store_error);

  auto n2 = n1;
  n2.name = "n2";
  b.join(n2);
  REQUIRE(eventually([&] { return a.nodes().size() == 2; }));

  a.set_node_state("draining");
  REQUIRE(eventually([&] { return b.nodes().at(0).state == "draining"; }));
  CHECK_THROWS_AS(a.set_node_state("asleep"), fezz::store_error);
  // The record is still on a lease: it is kept alive past its TTL.
  std::this_thread::sleep_for(4s);
  CHECK(b.nodes().size() == 2);

  a.leave();
  REQUIRE(eventually([&] { return b.nodes().size() == 1; }));
  CHECK(b.nodes().at(0).name == "n2");
  a.join(n1);  // the name is free again
  REQUIRE(eventually([&] { return b.nodes().size() == 2; }));
  b.leave();
  a.leave();
  CHECK(etcd.must_ctl("get --prefix --keys-only " + prefix + "nodes/").find("n1") ==
        std::string::npos);
}

TEST_CASE("etcd_store: a node whose lease is revoked behind its back registers again", "[etcd]") {
  auto& etcd = shared_etcd();
  const std::string prefix = "/lease/";
  const std::string key = prefix + "nodes/n1";
  captured_log log;
  fezz::etcd_store store(options_for(etcd.endpoint(), prefix, log.logger));
  store.join({"n1", "http://127.0.0.1:8081", "serving", "2026-12-01T21:30:00Z", "0.1.0"});

  auto lease_of_key = [&]() -> std::int64_t {
    const auto j = nlohmann::json::parse(etcd.must_ctl("get " + key + " -w json"));
    if (!j.contains("kvs")) {
      return 0;
    }
    return j["kvs"][0]["lease"].get<std::int64_t>();
  };
  const auto first = lease_of_key();
  REQUIRE(first != 0);

  char hex[32];
  std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(first));
  etcd.must_ctl(std::string("lease revoke ") + hex);
  CHECK(lease_of_key() == 0);  // the key went with its lease

  // The keep-alive (every TTL/3 = 1 s) finds the lease gone and registers again.
  REQUIRE(eventually([&] { return lease_of_key() != 0; }, 10s));
  CHECK(lease_of_key() != first);
  REQUIRE(eventually([&] { return store.nodes().size() == 1; }));
  CHECK(log.count("is gone; registering again") == 1);

  store.set_node_state("draining");
  CHECK(etcd.must_ctl("get --print-value-only " + key).find("draining") != std::string::npos);
  store.leave();
  CHECK(lease_of_key() == 0);
}

TEST_CASE("etcd_store: TLS with a client certificate and user/password authentication", "[etcd]") {
  fezz::test::temp_dir certs("fezz-etcd-certs");
  const auto dir = certs.path().string();
  const auto make_certs = fezz::test::run_command(
      "sh -c " + fezz::test::shell_quote(
                     "set -e; cd " + dir +
                     "; openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=fezz-test-ca"
                     " -keyout ca.key -out ca.crt"
                     "; openssl req -newkey rsa:2048 -nodes -subj /CN=etcd-server"
                     " -keyout server.key -out server.csr"
                     "; printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,"
                     "clientAuth\\n' > server.ext"
                     "; openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key "
                     "-CAcreateserial -days 2 -extfile server.ext -out server.crt"
                     "; printf 'extendedKeyUsage=clientAuth\\n' > client.ext"
                     "; openssl req -newkey rsa:2048 -nodes -subj /CN=root"
                     " -keyout ctl.key -out ctl.csr"
                     "; openssl x509 -req -in ctl.csr -CA ca.crt -CAkey ca.key "
                     "-CAcreateserial -days 2 -extfile client.ext -out ctl.crt"
                     "; openssl req -newkey rsa:2048 -nodes -subj /O=fezz-store"
                     " -keyout client.key -out client.csr"
                     "; openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key "
                     "-CAcreateserial -days 2 -extfile client.ext -out client.crt"),
      60);
  REQUIRE(make_certs.status == 0);

  fezz::test::etcd_tls tls{dir + "/ca.crt", dir + "/server.crt", dir + "/server.key", true};
  etcd_process etcd(etcd_process::options{
      tls, {"--auth-token-ttl=2"}, "--cert=" + dir + "/ctl.crt --key=" + dir + "/ctl.key"});
  etcd.must_ctl("user add root:s3cret");
  etcd.must_ctl("auth enable");
  etcd.set_ctl_flags("--cert=" + dir + "/ctl.crt --key=" + dir + "/ctl.key --user=root:s3cret");
  // etcd 3.4's gateway refuses (400) a client certificate with a CommonName once auth is
  // on: the store's certificate has none, and the user comes from the password.

  const std::string prefix = "/secure/";
  auto options = options_for(etcd.endpoint(), prefix);
  options.ca_file = dir + "/ca.crt";
  options.cert_file = dir + "/client.crt";
  options.key_file = dir + "/client.key";
  options.user = "root";
  options.password = "s3cret";

  SECTION("the right credentials") {
    captured_log log;
    options.logger = log.logger;
    fezz::etcd_store store(options);
    recorder events(store);
    store.register_function(make_entry("secret-fn"));
    CHECK(store.get("secret-fn"));
    // Tokens live 2 s here: after 3 s idle the store must log in again by itself.
    std::this_thread::sleep_for(3s);
    store.register_function(make_entry("after-expiry"));
    CHECK(store.get("after-expiry"));
    CHECK(log.count("logging in again") == 1);
    CHECK(events.summary() == std::vector<std::string>{"added secret-fn", "added after-expiry"});
    store.join({"secure-node", "https://127.0.0.1:1", "serving", "", ""});
    CHECK(store.nodes().size() == 1);
    store.leave();
    CHECK(etcd.must_ctl("get --print-value-only " + prefix + "functions/secret-fn")
              .find("secret-fn") != std::string::npos);
  }

  SECTION("a wrong password is refused with etcd's reason") {
    options.password = "wrong";
    options.initial_sync_timeout = 4000ms;
    CHECK_THROWS_WITH(fezz::etcd_store(options),
                      Catch::Matchers::Contains("authentication failed"));
  }

  SECTION("no client certificate: the TLS handshake fails") {
    options.cert_file.clear();
    options.key_file.clear();
    options.initial_sync_timeout = 3000ms;
    CHECK_THROWS_AS(fezz::etcd_store(options), fezz::store_error);
  }

  SECTION("a CA that did not sign etcd's certificate: refused") {
    options.ca_file = dir + "/client.crt";
    options.initial_sync_timeout = 3000ms;
    CHECK_THROWS_WITH(fezz::etcd_store(options), Catch::Matchers::Contains("certificate"));
  }
}

TEST_CASE("etcd_store: an unreachable etcd at start", "[etcd]") {
  auto options = options_for("127.0.0.1:" + std::to_string(fezz::test::free_port()), "/none/");
  options.initial_sync_timeout = 1000ms;
  CHECK_THROWS_WITH(fezz::etcd_store(options), Catch::Matchers::Contains("no list of /none/") &&
                                                   Catch::Matchers::Contains("cannot be reached"));

  // Not waiting: the store starts empty and keeps trying.
  options.initial_sync_timeout = 0ms;
  fezz::etcd_store store(options);
  CHECK(store.list().empty());
  CHECK_FALSE(store.status().connected);
  CHECK_THROWS_AS(store.register_function(make_entry("x")), fezz::store_error);
}

TEST_CASE("etcd endpoints are parsed with their scheme", "[etcd]") {
  const auto plain = fezz::etcd::parse_endpoint("127.0.0.1:2379", false);
  CHECK(plain.host == "127.0.0.1");
  CHECK(plain.port == "2379");
  CHECK_FALSE(plain.tls);
  CHECK(plain.to_string() == "http://127.0.0.1:2379");
  CHECK(fezz::etcd::parse_endpoint("127.0.0.1:2379", true).tls);  // a CA file given
  const auto secure = fezz::etcd::parse_endpoint("https://etcd.example:2379/", false);
  CHECK(secure.tls);
  CHECK(secure.host == "etcd.example");
  CHECK_FALSE(fezz::etcd::parse_endpoint("http://10.0.0.1:1", true).tls);
  const auto v6 = fezz::etcd::parse_endpoint("[::1]:2379", false);
  CHECK(v6.host == "::1");
  CHECK(v6.to_string() == "http://[::1]:2379");
  CHECK_THROWS_AS(fezz::etcd::parse_endpoint("no-port", false), std::invalid_argument);
  CHECK_THROWS_AS(fezz::etcd::parse_endpoint("host:", false), std::invalid_argument);
  CHECK_THROWS_AS(fezz::etcd::parse_endpoint("host:12x", false), std::invalid_argument);
  CHECK_THROWS_AS(fezz::etcd::parse_endpoint("[::1]2379", false), std::invalid_argument);

  fezz::etcd_options mixed;
  mixed.endpoints = {"http://127.0.0.1:1", "https://127.0.0.1:2"};
  CHECK_THROWS_AS(fezz::etcd_store(mixed), std::invalid_argument);
  fezz::etcd_options none;
  none.endpoints.clear();
  CHECK_THROWS_AS(fezz::etcd_store(none), std::invalid_argument);
}
