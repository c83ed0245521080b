#include <fezz/host/function_registry.hpp>

#include <spdlog/sinks/null_sink.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// Counts what the registry does to it; every test starts from zero.
struct probe {
  static inline std::atomic<int> constructed{0};
  static inline std::atomic<int> destroyed{0};
  static inline std::atomic<int> loads{0};
  static inline std::atomic<int> unloads{0};
  static inline std::atomic<int> load_failures_left{0};
  static inline std::atomic<int> violations{0};
  static inline std::chrono::milliseconds load_delay{0};
  static inline std::string seen_env;

  static void reset() {
    constructed = destroyed = loads = unloads = load_failures_left = violations = 0;
    load_delay = 0ms;
    seen_env.clear();
  }
};

struct probed_function {
  std::atomic<int> in_flight{0};
  std::atomic<bool> unloading{false};

  probed_function() { ++probe::constructed; }
  ~probed_function() { ++probe::destroyed; }

  asio::awaitable<void> on_load(fezz::context& ctx) {
    if (probe::load_delay > 0ms) {
      asio::steady_timer timer(co_await asio::this_coro::executor, probe::load_delay);
      co_await timer.async_wait(asio::use_awaitable);
    }
    if (probe::load_failures_left.fetch_sub(1) > 0) {
      throw std::runtime_error("database unreachable");
    }
    probe::seen_env = ctx.env("MODE", "");
    ++probe::loads;
  }

  fezz::response fetch(const fezz::request&, fezz::context&) {
    ++in_flight;
    if (unloading) {
      ++probe::violations;  // a call on an instance being unloaded
    }
    std::this_thread::yield();
    --in_flight;
    return fezz::response::text("ok");
  }

  void on_unload(fezz::context&) {
    unloading = true;
    if (in_flight != 0) {
      ++probe::violations;  // unloaded under a running call
    }
    ++probe::unloads;
  }
};

struct slow_loader {
  asio::awaitable<void> on_load(fezz::context&) {
    asio::steady_timer timer(co_await asio::this_coro::executor, 5s);
    co_await timer.async_wait(asio::use_awaitable);
  }
  fezz::response fetch(const fezz::request&, fezz::context&) { return fezz::response{}; }
};

std::shared_ptr<const fezz::function_info> make_info(std::string id, std::string mode = "a",
                                                     std::chrono::seconds timeout = 5s) {
  auto info = std::make_shared<fezz::function_info>();
  info->manifest = fezz::owned_manifest(id, "v1", "GET", "/" + id);
  info->manifest.timeout = timeout;
  info->env = {{"MODE", std::move(mode)}};
  info->logger =
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
  return info;
}

struct registry_fixture {
  asio::thread_pool pool{4};
  fezz::host::function_registry registry{
      pool.get_executor(), std::make_shared<spdlog::logger>(
                               "registry", std::make_shared<spdlog::sinks::null_sink_mt>())};

  registry_fixture() { probe::reset(); }
  ~registry_fixture() {
    unload_all();
    pool.join();
  }

  template <class F = probed_function>
  fezz::host::function_registry::handle add(const char* id, std::chrono::seconds timeout = 5s) {
    return registry.add(fezz::function_registration::of<F>(fezz::manifest{.id = id}),
                        make_info(id, "a", timeout));
  }

  fezz::host::function_lease acquire(const fezz::host::function_registry::handle& slot) {
    return asio::co_spawn(pool, slot->acquire(), asio::use_future).get();
  }

  bool unload_all() {
    return asio::co_spawn(pool, registry.unload_all(std::chrono::steady_clock::now() + 5s),
                          asio::use_future)
        .get();
  }

  static void eventually(const std::function<bool()>& condition) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!condition() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    REQUIRE(condition());
  }
};

// Calls the leased instance as the host would.
fezz::response call(const fezz::host::function_lease& lease) {
  auto info = make_info("call");
  fezz::request req(fezz::http::verb::get, "/");
  fezz::context ctx(*info, std::chrono::steady_clock::now() + 1s);
  auto outcome = lease.instance().fetch(req, ctx);
  return std::get<fezz::response>(std::move(outcome));
}

}  // namespace

TEST_CASE_METHOD(registry_fixture, "the registry holds code, not instances, until a call",
                 "[function_registry]") {
  const auto slot = add("f");
  CHECK(probe::constructed == 0);
  CHECK_FALSE(slot->loaded());
  CHECK_FALSE(slot->try_acquire().has_value());  // not loaded: the fast path declines

  {
    auto lease = acquire(slot);
    CHECK(probe::constructed == 1);
    CHECK(probe::loads == 1);
    CHECK(slot->loaded());
    CHECK(call(lease).body() == "ok");
    CHECK(slot->leases() == 1);
  }
  CHECK(slot->leases() == 0);
  // Loaded now: later calls take the lock-free path and load nothing.
  auto again = slot->try_acquire();
  REQUIRE(again.has_value());
  CHECK(probe::constructed == 1);
  CHECK(slot->metrics().loads == 1);
}

TEST_CASE_METHOD(registry_fixture, "concurrent cold starts share one on_load",
                 "[function_registry]") {
  probe::load_delay = 50ms;  // keep the load open while everyone arrives
  const auto slot = add("f");
  std::vector<std::future<fezz::host::function_lease>> waiting;
  for (int i = 0; i < 64; ++i) {
    waiting.push_back(asio::co_spawn(pool, slot->acquire(), asio::use_future));
  }
  std::vector<fezz::host::function_lease> leases;
  for (auto& f : waiting) {
    leases.push_back(f.get());
  }
  CHECK(probe::constructed == 1);
  CHECK(probe::loads == 1);
  CHECK(slot->leases() == 64);
  leases.clear();
  CHECK(slot->leases() == 0);
}

TEST_CASE_METHOD(registry_fixture, "a failed on_load answers 503 and is retried later",
                 "[function_registry]") {
  probe::load_failures_left = 1;
  const auto slot = add("f");
  try {
    acquire(slot);
    FAIL("the first load should fail");
  } catch (const fezz::error& e) {
    CHECK(e.status() == fezz::http::status::service_unavailable);
    CHECK_THAT(e.what(), Catch::Contains("database unreachable") && Catch::Contains("'f'"));
  }
  CHECK_FALSE(slot->loaded());
  CHECK(slot->metrics().load_failures == 1);
  CHECK(probe::destroyed == 1);  // the half-made instance is gone, never routable

  auto lease = acquire(slot);  // the next call tries again and succeeds
  CHECK(slot->loaded());
  CHECK(slot->metrics().loads == 1);
  CHECK(registry.status().front().last_error.empty());
}

TEST_CASE_METHOD(registry_fixture, "an on_load past the timeout fails the load",
                 "[function_registry]") {
  const auto slot = add<slow_loader>("slow", 1s);
  const auto started = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(acquire(slot), Catch::Contains("timed out"));
  CHECK(std::chrono::steady_clock::now() - started < 4s);
  CHECK_FALSE(slot->loaded());
}

TEST_CASE_METHOD(registry_fixture, "idle functions are unloaded and reload on the next call",
                 "[function_registry]") {
  const auto slot = add("f");
  { auto lease = acquire(slot); }
  CHECK(registry.unload_idle(1h) == 0);  // not idle long enough
  CHECK(registry.unload_idle(0s) == 1);
  eventually([&] { return !slot->loaded(); });
  CHECK(probe::unloads == 1);
  CHECK(probe::destroyed == 1);
  CHECK(slot->metrics().unloads == 1);

  auto lease = acquire(slot);
  CHECK(probe::loads == 2);
  CHECK(probe::constructed == 2);
}

TEST_CASE_METHOD(registry_fixture, "an instance with a call in flight is never unloaded",
                 "[function_registry]") {
  const auto slot = add("f");
  auto lease = acquire(slot);
  CHECK(registry.unload_idle(0s) == 0);  // the reaper skips it
  CHECK(slot->retire());                 // the control plane asks: it waits for the call
  std::this_thread::sleep_for(20ms);
  CHECK(slot->loaded());
  CHECK(probe::unloads == 0);
  CHECK_FALSE(slot->try_acquire().has_value());  // closing: no new leases

  { auto done = std::move(lease); }  // the last call ends: now it unloads
  eventually([&] { return !slot->loaded(); });
  CHECK(probe::unloads == 1);
  CHECK(probe::violations == 0);
}

TEST_CASE_METHOD(registry_fixture, "a call arriving during an unload waits and gets a new instance",
                 "[function_registry]") {
  const auto slot = add("f");
  { auto lease = acquire(slot); }
  REQUIRE(registry.unload_idle(0s) == 1);
  auto lease = acquire(slot);  // may land while on_unload runs
  CHECK(slot->loaded());
  CHECK(probe::loads == 2);
  CHECK(probe::unloads == 1);
  CHECK(call(lease).body() == "ok");
}

TEST_CASE_METHOD(registry_fixture,
                 "configure retires the live instance; the next load sees the change",
                 "[function_registry]") {
  const auto slot = add("f");
  { auto lease = acquire(slot); }
  CHECK(probe::seen_env == "a");
  slot->configure(make_info("f", "b"));
  eventually([&] { return !slot->loaded(); });
  auto lease = acquire(slot);
  CHECK(probe::seen_env == "b");
  CHECK(probe::loads == 2);
}

TEST_CASE_METHOD(registry_fixture, "unload_all unloads every function", "[function_registry]") {
  const auto a = add("a");
  const auto b = add("b");
  add("never-called");
  { auto la = acquire(a), lb = acquire(b); }
  CHECK(unload_all());
  CHECK_FALSE(a->loaded());
  CHECK_FALSE(b->loaded());
  CHECK(probe::unloads == 2);
  CHECK(probe::destroyed == 2);
}

TEST_CASE_METHOD(registry_fixture, "ids are unique", "[function_registry]") {
  add("f");
  CHECK_THROWS_AS(add("f"), std::invalid_argument);
  CHECK(registry.find("f") != nullptr);
  CHECK(registry.find("g") == nullptr);
  CHECK(registry.all().size() == 1);
}

TEST_CASE_METHOD(registry_fixture, "a slot is removed only while nothing of it is loaded",
                 "[function_registry]") {
  const auto slot = add("gone");
  {
    auto lease = acquire(slot);
    CHECK_FALSE(registry.remove_if_idle("gone"));  // loaded, with a call in flight
  }
  CHECK_FALSE(registry.remove_if_idle("gone"));  // loaded, idle
  slot->retire();
  eventually([&] { return !slot->busy(); });
  CHECK(registry.remove_if_idle("gone"));
  CHECK(registry.find("gone") == nullptr);
  CHECK_FALSE(registry.remove_if_idle("gone"));
  CHECK(add("gone") != nullptr);  // the id is free again
}

TEST_CASE_METHOD(registry_fixture, "calls racing the reaper never meet an unloading instance",
                 "[function_registry][race]") {
  const auto slot = add("f");
  std::atomic<bool> stop{false};
  std::atomic<int> calls{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < 400; ++i) {
        auto lease = slot->try_acquire();
        if (!lease) {
          lease.emplace(acquire(slot));
        }
        // Catch2 assertions are not thread-safe: count here, check after.
        if (call(*lease).body() == "ok") {
          ++calls;
        }
      }
    });
  }
  std::thread reaper([&] {
    while (!stop) {
      registry.unload_idle(0s);
      std::this_thread::yield();
    }
  });
  for (auto& t : callers) {
    t.join();
  }
  stop = true;
  reaper.join();
  CHECK(unload_all());

  CHECK(calls == 1600);
  CHECK(probe::violations == 0);
  CHECK(probe::loads == probe::unloads);
  CHECK(probe::constructed == probe::destroyed);
  CHECK(probe::loads >= 1);
  CHECK(slot->metrics().loads == static_cast<std::uint64_t>(probe::loads.load()));
}
