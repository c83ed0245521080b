#include <fezz/memory_store.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using kind = fezz::store_event::kind;

namespace {

fezz::function_entry make_entry(const std::string& id, const std::string& version = "v1") {
  return fezz::function_entry{fezz::owned_manifest{id, version, "GET", "/" + id}};
}

// Records every event a store emits. Callbacks never run concurrently, so no lock.
struct recorder {
  std::vector<fezz::store_event> events;
  fezz::subscription subscription;

  explicit recorder(fezz::function_store& store)
      : subscription(store.watch([this](const fezz::store_event& e) { events.push_back(e); })) {}
  recorder(const recorder&) = delete;  // the callback holds `this`
  recorder& operator=(const recorder&) = delete;

  std::vector<std::string> summary() const {
    std::vector<std::string> result;
    for (const auto& e : events) {
      result.push_back(std::string(fezz::to_string(e.type)) + " " + e.entry.id());
    }
    return result;
  }
};

std::vector<std::string> ids(const std::vector<fezz::function_entry>& entries) {
  std::vector<std::string> result;
  for (const auto& e : entries) {
    result.push_back(e.id());
  }
  return result;
}

}  // namespace

TEST_CASE("memory_store registers, gets, lists sorted and removes", "[memory_store]") {
  fezz::memory_store store;
  CHECK(store.size() == 0);
  CHECK(store.list().empty());

  store.register_function(make_entry("charlie"));
  store.register_function(make_entry("alpha").on_node("node-1"));
  store.register_function(make_entry("bravo"));

  CHECK(store.size() == 3);
  CHECK(ids(store.list()) == std::vector<std::string>{"alpha", "bravo", "charlie"});
  const auto alpha = store.get("alpha");
  REQUIRE(alpha.has_value());
  CHECK(alpha->manifest.path == "/alpha");
  CHECK(alpha->nodes == std::vector<std::string>{"node-1"});
  CHECK_FALSE(store.get("delta").has_value());

  CHECK(store.remove("bravo"));
  CHECK_FALSE(store.remove("bravo"));
  CHECK_FALSE(store.get("bravo").has_value());
  CHECK(ids(store.list()) == std::vector<std::string>{"alpha", "charlie"});
  CHECK(store.size() == 2);
}

TEST_CASE("memory_store emits added, then updated, and nothing for an equal entry",
          "[memory_store]") {
  fezz::memory_store store;
  recorder log(store);

  store.register_function(make_entry("fn"));
  store.register_function(make_entry("fn"));
  CHECK(log.summary() == std::vector<std::string>{"added fn"});

  const auto changed = make_entry("fn").with_env("MODE", "fast");
  store.register_function(changed);
  store.register_function(changed);
  REQUIRE(log.events.size() == 2);
  CHECK(log.events[1] == fezz::store_event{kind::updated, changed});
  CHECK(store.get("fn") == changed);
}

TEST_CASE("memory_store's removed event carries the entry as it was", "[memory_store]") {
  fezz::memory_store store;
  const auto entry = make_entry("fn", "v7").on_node("node-2").with_env("K", "V");
  store.register_function(entry);
  recorder log(store);

  CHECK(store.remove("fn"));
  CHECK_FALSE(store.remove("fn"));
  REQUIRE(log.events.size() == 1);
  CHECK(log.events[0] == fezz::store_event{kind::removed, entry});
}

TEST_CASE("memory_store rejects an invalid manifest with store_error", "[memory_store]") {
  fezz::memory_store store;
  store.register_function(make_entry("fn"));
  recorder log(store);

  auto bad_path = make_entry("fn");
  bad_path.manifest.path = "no-slash";
  CHECK_THROWS_MATCHES(
      store.register_function(bad_path), fezz::store_error,
      Catch::Matchers::Message("cannot register function 'fn': path must start with '/'"));

  auto bad_method = make_entry("other");
  bad_method.manifest.method = "get";
  CHECK_THROWS_WITH(store.register_function(bad_method),
                    Catch::Matchers::Contains("'other'") &&
                        Catch::Matchers::Contains("method must be an upper-case"));

  auto bad_timeout = make_entry("slow");
  bad_timeout.manifest.timeout = 0s;
  CHECK_THROWS_WITH(store.register_function(bad_timeout),
                    Catch::Matchers::Contains("timeout must be positive"));
  CHECK_THROWS_WITH(store.register_function(fezz::function_entry{}),
                    Catch::Matchers::Contains("id must not be empty"));

  CHECK(log.events.empty());
  CHECK(ids(store.list()) == std::vector<std::string>{"fn"});
  CHECK(store.get("fn")->manifest.path == "/fn");
}

TEST_CASE("function_entry names the nodes that serve it", "[memory_store]") {
  const auto everywhere = make_entry("a");
  CHECK(everywhere.serves("node-1"));
  CHECK(everywhere.serves(""));

  const auto pinned = make_entry("b").on_node("node-1").on_node("node-2").on_node("node-1");
  CHECK(pinned.nodes == std::vector<std::string>{"node-1", "node-2"});
  CHECK(pinned.serves("node-1"));
  CHECK(pinned.serves("node-2"));
  CHECK_FALSE(pinned.serves("node-3"));
  CHECK_FALSE(pinned.serves("node"));

  auto wildcard = make_entry("c");
  wildcard.on_node("node-1").on_node("*");
  CHECK(wildcard.serves("node-9"));
}

TEST_CASE("function_entry carries a per-function environment", "[memory_store]") {
  auto entry = make_entry("fn").with_env("A", "1").with_env("B", "2");
  entry.with_env("A", "3");
  CHECK(entry.env == fezz::env_map{{"A", "3"}, {"B", "2"}});
  CHECK(entry.id() == "fn");
  CHECK(entry != make_entry("fn"));

  fezz::memory_store store;
  store.register_function(entry);
  CHECK(store.get("fn")->env.at("A") == "3");
}

TEST_CASE("store event kinds have names", "[memory_store]") {
  STATIC_REQUIRE(fezz::to_string(kind::added) == "added");
  STATIC_REQUIRE(fezz::to_string(kind::updated) == "updated");
  STATIC_REQUIRE(fezz::to_string(kind::removed) == "removed");
}

TEST_CASE("memory_store delivers many events in the order of the changes", "[memory_store]") {
  fezz::memory_store store;
  store.register_function(make_entry("before"));  // not a later change: not delivered
  recorder first(store);
  recorder second(store);

  std::vector<std::string> expected;
  for (int i = 0; i < 500; ++i) {
    const std::string id = "fn-" + std::to_string(i % 7);
    if (i % 5 == 4 && store.get(id)) {
      store.remove(id);
      expected.push_back("removed " + id);
    } else {
      const bool present = store.get(id).has_value();
      store.register_function(make_entry(id, "v" + std::to_string(i)));
      expected.push_back((present ? "updated " : "added ") + id);
    }
    // A change made outside a callback has been delivered when the call returns.
    REQUIRE(first.events.size() == expected.size());
  }
  CHECK(first.summary() == expected);
  CHECK(second.summary() == expected);
}

TEST_CASE("memory_store's subscription unsubscribes on reset and destruction", "[memory_store]") {
  fezz::memory_store store;
  int reset_calls = 0;
  int destroyed_calls = 0;
  int moved_calls = 0;

  auto reset_sub = store.watch([&](const fezz::store_event&) { ++reset_calls; });
  fezz::subscription moved_to;
  {
    auto scoped = store.watch([&](const fezz::store_event&) { ++destroyed_calls; });
    auto moved_from = store.watch([&](const fezz::store_event&) { ++moved_calls; });
    CHECK(moved_from);
    moved_to = std::move(moved_from);
    CHECK_FALSE(moved_from);  // moved-from is empty
    store.register_function(make_entry("a"));
  }
  CHECK(reset_sub);
  reset_sub.reset();
  CHECK_FALSE(reset_sub);
  reset_sub.reset();  // twice is harmless

  store.register_function(make_entry("b"));
  CHECK(reset_calls == 1);
  CHECK(destroyed_calls == 1);
  CHECK(moved_calls == 2);  // moving kept the watch alive

  moved_to = fezz::subscription{};  // assigning over a live subscription ends it
  store.remove("a");
  CHECK(moved_calls == 2);
}

TEST_CASE("memory_store rejects an empty watch callback", "[memory_store]") {
  fezz::memory_store store;
  CHECK_THROWS_AS(store.watch(nullptr), std::invalid_argument);
}

TEST_CASE("a watch callback may read and change the store", "[memory_store]") {
  fezz::memory_store store;
  std::vector<std::string> seen_inside;
  std::vector<std::string> order;
  auto actor = store.watch([&](const fezz::store_event& e) {
    order.push_back(std::string(fezz::to_string(e.type)) + " " + e.entry.id());
    if (e.type == kind::added && e.entry.id() == "a") {
      seen_inside.push_back(store.get("a") ? "get a" : "no a");
      seen_inside.push_back(std::to_string(store.list().size()) + " listed");
      store.register_function(make_entry("b"));
      store.remove("a");
      // Both changes are made, but their events wait until this one is delivered.
      seen_inside.push_back(std::to_string(store.size()) + " stored");
      seen_inside.push_back(std::to_string(order.size()) + " seen");
    }
  });
  recorder bystander(store);

  store.register_function(make_entry("a"));

  CHECK(seen_inside == std::vector<std::string>{"get a", "1 listed", "1 stored", "1 seen"});
  const std::vector<std::string> expected{"added a", "added b", "removed a"};
  CHECK(order == expected);
  CHECK(bystander.summary() == expected);
  CHECK(ids(store.list()) == std::vector<std::string>{"b"});
}

TEST_CASE("a watch started inside a callback sees only later changes", "[memory_store]") {
  fezz::memory_store store;
  std::unique_ptr<recorder> late;
  auto starter = store.watch([&](const fezz::store_event&) {
    if (!late) {
      store.register_function(make_entry("queued-before-watch"));
      late = std::make_unique<recorder>(store);
      store.register_function(make_entry("after-watch"));
    }
  });

  store.register_function(make_entry("first"));
  REQUIRE(late);
  CHECK(late->summary() == std::vector<std::string>{"added after-watch"});
  store.remove("first");
  CHECK(late->summary() == std::vector<std::string>{"added after-watch", "removed first"});
}

TEST_CASE("a watch callback may unsubscribe itself and others", "[memory_store]") {
  fezz::memory_store store;
  fezz::subscription self;
  fezz::subscription other;
  int self_calls = 0;
  int other_calls = 0;

  self = store.watch([&](const fezz::store_event&) {
    ++self_calls;
    self.reset();
    other.reset();  // watches after this one do not see even the current event
  });
  other = store.watch([&](const fezz::store_event&) { ++other_calls; });

  store.register_function(make_entry("a"));
  store.register_function(make_entry("b"));
  CHECK(self_calls == 1);
  CHECK(other_calls == 0);
  CHECK_FALSE(self);
  CHECK_FALSE(other);
}

TEST_CASE("a subscription may outlive its store", "[memory_store]") {
  auto token = std::make_shared<int>(0);
  auto store = std::make_unique<fezz::memory_store>();
  auto first = store->watch([token](const fezz::store_event&) { ++*token; });
  auto second = store->watch([token](const fezz::store_event&) { ++*token; });
  store->register_function(make_entry("a"));
  CHECK(*token == 2);
  CHECK(token.use_count() == 3);

  store.reset();
  CHECK(token.use_count() == 1);  // the store's callbacks died with it
  CHECK(first);
  first.reset();
  CHECK_FALSE(first);
  // `second` is destroyed at the end of the scope, after the store.
}

TEST_CASE("resetting from another thread waits for the running callback", "[memory_store]") {
  fezz::memory_store store;
  std::promise<void> entered;
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<int> calls{0};
  std::atomic<bool> finished{false};

  auto sub = store.watch([&](const fezz::store_event&) {
    if (calls.fetch_add(1) == 0) {
      entered.set_value();
      released.wait();
      std::this_thread::sleep_for(10ms);
      finished = true;
    }
  });

  std::thread changer([&] { store.register_function(make_entry("a")); });
  entered.get_future().wait();

  std::atomic<bool> reset_returned{false};
  bool finished_when_reset_returned = false;
  std::promise<void> resetting;
  std::thread resetter([&] {
    resetting.set_value();
    sub.reset();
    finished_when_reset_returned = finished;
    reset_returned = true;
  });
  resetting.get_future().wait();
  std::this_thread::sleep_for(50ms);
  CHECK_FALSE(reset_returned);

  release.set_value();
  resetter.join();
  changer.join();
  CHECK(finished_when_reset_returned);

  store.register_function(make_entry("b"));
  CHECK(calls == 1);
}

TEST_CASE("a change returns only once watchers have seen it, even under contention",
          "[memory_store]") {
  fezz::memory_store store;
  std::promise<void> entered;
  std::promise<void> release;
  auto released = release.get_future().share();
  std::vector<std::string> seen;  // callbacks never overlap, so no lock

  auto sub = store.watch([&](const fezz::store_event& e) {
    seen.push_back(e.entry.id());
    if (e.entry.id() == "slow") {
      entered.set_value();
      released.wait();
    }
  });

  std::thread slow([&] { store.register_function(make_entry("slow")); });
  entered.get_future().wait();

  std::atomic<bool> returned{false};
  std::thread quick([&] {
    store.register_function(make_entry("quick"));
    returned = true;
  });
  std::this_thread::sleep_for(50ms);
  CHECK_FALSE(returned);                  // its event waits behind "slow"
  CHECK(store.get("quick").has_value());  // but the change itself is made

  release.set_value();
  quick.join();
  slow.join();
  CHECK(seen == std::vector<std::string>{"slow", "quick"});
}

TEST_CASE("memory_store under concurrent changes: each watcher sees each change once",
          "[memory_store]") {
  constexpr int threads = 4;
  constexpr int changes_per_thread = 400;
  fezz::memory_store store;
  recorder first(store);
  recorder second(store);

  // Each thread owns its ids, so it knows which events its changes must produce; all of
  // them also overwrite "shared".
  std::vector<std::vector<std::string>> expected(threads);
  std::atomic<int> failed_removals{0};  // Catch's assertions are not thread-safe
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      const std::string prefix = "t" + std::to_string(t) + "-";
      std::vector<bool> present(5, false);
      for (int i = 0; i < changes_per_thread; ++i) {
        const int slot = i % 5;
        const std::string id = prefix + std::to_string(slot);
        if (i % 3 == 2 && present[slot]) {
          if (!store.remove(id)) {
            ++failed_removals;
          }
          expected[t].push_back("removed " + id);
          present[slot] = false;
        } else {
          store.register_function(make_entry(id, "v" + std::to_string(i)));
          expected[t].push_back((present[slot] ? "updated " : "added ") + id);
          present[slot] = true;
        }
        store.register_function(make_entry("shared", prefix + std::to_string(i)));
      }
    });
  }
  for (auto& w : workers) {
    w.join();
  }

  CHECK(failed_removals == 0);
  CHECK(first.events == second.events);
  std::size_t total = 0;
  for (int t = 0; t < threads; ++t) {
    const std::string prefix = "t" + std::to_string(t) + "-";
    std::vector<std::string> observed;
    for (const auto& line : first.summary()) {
      if (line.find(" " + prefix) != std::string::npos) {
        observed.push_back(line);
      }
    }
    CHECK(observed == expected[t]);
    total += expected[t].size();
  }

  std::size_t shared_events = 0;
  const fezz::function_entry* last_shared = nullptr;
  for (const auto& e : first.events) {
    if (e.entry.id() == "shared") {
      CHECK(e.type == (shared_events == 0 ? kind::added : kind::updated));
      ++shared_events;
      last_shared = &e.entry;
    }
  }
  CHECK(shared_events == std::size_t{threads * changes_per_thread});
  CHECK(first.events.size() == total + shared_events);

  // Replaying the events in the order delivered gives exactly the final contents.
  std::map<std::string, fezz::function_entry> replayed;
  for (const auto& e : first.events) {
    if (e.type == kind::removed) {
      replayed.erase(e.entry.id());
    } else {
      replayed.insert_or_assign(e.entry.id(), e.entry);
    }
  }
  std::vector<fezz::function_entry> replayed_list;
  for (const auto& [id, entry] : replayed) {
    replayed_list.push_back(entry);
  }
  CHECK(store.list() == replayed_list);
  REQUIRE(last_shared != nullptr);
  CHECK(store.get("shared") == *last_shared);
}

TEST_CASE("memory_store numbers its changes with one store-wide revision", "[memory_store]") {
  fezz::memory_store store;
  CHECK(store.status().revision == 0);
  recorder log(store);

  store.register_function(make_entry("a"));
  store.register_function(make_entry("b"));
  CHECK(store.get("a")->revision == 1);
  CHECK(store.get("b")->revision == 2);

  store.register_function(make_entry("a"));  // equal: no change, no new revision
  CHECK(store.get("a")->revision == 1);
  store.register_function(make_entry("a", "v2"));
  CHECK(store.get("a")->revision == 3);
  CHECK(store.list().front().revision == 3);

  CHECK(store.remove("b"));
  REQUIRE(log.events.size() == 4);
  CHECK(log.events[0].entry.revision == 1);
  CHECK(log.events[2].entry.revision == 3);
  CHECK(log.events[3].type == kind::removed);
  CHECK(log.events[3].entry.revision == 4);  // a removal is a change too
  CHECK(store.status().revision == 4);
}

TEST_CASE("function_entry equality compares content, not revision", "[memory_store]") {
  auto a = make_entry("fn");
  auto b = make_entry("fn");
  b.revision = 42;
  CHECK(a == b);
  b.with_env("K", "V");
  CHECK(a != b);
}

TEST_CASE("memory_store creates only if absent", "[memory_store]") {
  fezz::memory_store store;
  recorder log(store);
  CHECK(store.create(make_entry("fn", "v1")));
  CHECK_FALSE(store.create(make_entry("fn", "v2")));
  CHECK(store.get("fn")->manifest.version == "v1");
  CHECK(log.summary() == std::vector<std::string>{"added fn"});

  auto bad = make_entry("bad");
  bad.manifest.path = "x";
  CHECK_THROWS_AS(store.create(bad), fezz::store_error);
  CHECK_FALSE(store.get("bad"));
}

TEST_CASE("memory_store compare_and_swap writes only over the expected revision",
          "[memory_store]") {
  fezz::memory_store store;
  CHECK_FALSE(store.compare_and_swap(make_entry("fn"), 0));  // absent
  CHECK_FALSE(store.get("fn"));

  store.register_function(make_entry("fn", "v1"));
  const auto read = *store.get("fn");
  store.register_function(make_entry("fn", "v2"));  // another writer got there first

  recorder log(store);
  CHECK_FALSE(store.compare_and_swap(make_entry("fn", "v3"), read.revision));
  CHECK(store.get("fn")->manifest.version == "v2");
  CHECK(log.events.empty());

  const auto current = *store.get("fn");
  CHECK(store.compare_and_swap(make_entry("fn", "v3"), current.revision));
  CHECK(store.get("fn")->manifest.version == "v3");
  CHECK(store.get("fn")->revision > current.revision);
  CHECK(log.summary() == std::vector<std::string>{"updated fn"});

  auto bad = make_entry("fn");
  bad.manifest.timeout = 0s;
  CHECK_THROWS_AS(store.compare_and_swap(bad, store.get("fn")->revision), fezz::store_error);
}

TEST_CASE("memory_store holds one node membership and refuses a duplicate name", "[memory_store]") {
  fezz::memory_store store;
  CHECK(store.nodes().empty());
  CHECK_THROWS_AS(store.set_node_state("draining"), fezz::store_error);
  store.leave();  // not joined: nothing to do

  const fezz::node_record node{"node-1", "http://127.0.0.1:8080", "serving", "2026-12-01T21:30:00Z",
                               "0.1.0"};
  store.join(node);
  CHECK(store.nodes() == std::vector<fezz::node_record>{node});
  CHECK_THROWS_WITH(store.join(node), Catch::Matchers::Contains("'node-1'") &&
                                          Catch::Matchers::Contains("live node of that name"));
  CHECK_THROWS_WITH(store.join({"node-2", "", "serving", "", ""}),
                    Catch::Matchers::Contains("already joined as 'node-1'"));

  store.set_node_state("draining");
  REQUIRE(store.nodes().size() == 1);
  CHECK(store.nodes()[0].state == "draining");
  CHECK_THROWS_WITH(store.set_node_state("asleep"), Catch::Matchers::Contains("'asleep'"));
  CHECK(store.nodes()[0].state == "draining");

  store.leave();
  CHECK(store.nodes().empty());
  store.join({"node-2", "", "serving", "", ""});  // after leaving, joining again works
  CHECK(store.nodes().at(0).name == "node-2");
}

TEST_CASE("memory_store reports its status", "[memory_store]") {
  fezz::memory_store store;
  auto status = store.status();
  CHECK(status.kind == "memory");
  CHECK(status.connected);
  CHECK(status.endpoints.empty());
  CHECK(status.seconds_since_last_event < 0);
  CHECK(status.invalid_entries == 0);

  store.register_function(make_entry("a"));
  status = store.status();
  CHECK(status.revision == 1);
  CHECK(status.seconds_since_last_event >= 0);
  CHECK(status.seconds_since_last_event < 60);
  CHECK(status.reconnects == 0);
  CHECK(status.resyncs == 0);
}

TEST_CASE("memory_store holds module code by SHA-256, up to a limit", "[memory_store]") {
  fezz::memory_store store;
  const std::string sha(64, 'a');
  CHECK(store.get_module(sha, 100) == std::nullopt);
  store.put_module(sha, std::string("\0\x7f\xff", 3));
  CHECK(store.get_module(sha, 3) == std::string("\0\x7f\xff", 3));
  CHECK_THROWS_WITH(store.get_module(sha, 2), "module " + sha + " is 3 bytes, over the limit of 2");
  CHECK(store.list().empty());  // code is not an entry
}
