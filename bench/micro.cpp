// fezz_micro: Google Benchmark microbenchmarks of the request path's parts.
//
//   route_lookup/<paths>/<routes>   route_table::find, including the path
//                                   parameters it extracts, over a table of
//                                   10, 1,000 or 100,000 routes (a third each
//                                   static, parameter and wildcard). "fixed"
//                                   cycles through 8 paths; "random" through
//                                   4,096 paths hitting routes drawn at random
//                                   across the whole table.
//   registry_try_acquire_release    the lock-free lease on a loaded function.
//   registry_acquire_loaded         the coroutine acquire() of a loaded function,
//                                   started with co_spawn and run to completion:
//                                   the reference for the cold load below.
//   registry_cold_load              acquire() of an unloaded function on an
//                                   io_context until the lease is in hand (the
//                                   unload after it is not timed).
//   metrics_update/threads:N        one request's counter bump and
//                                   latency_histogram::record, N threads on the
//                                   same function_metrics.

#include <fezz/host/function_metrics.hpp>
#include <fezz/host/function_registry.hpp>
#include <fezz/route_table.hpp>

#include <benchmark/benchmark.h>
#include <spdlog/logger.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;

// ---- route lookup ----

struct route_fixture {
  fezz::route_table table;
  std::vector<std::string> fixed_paths;
  std::vector<std::string> random_paths;
};

// Route i is static, a parameter or a wildcard by i % 3, under one of up to 100
// services so that the trie has both wide and deep parts:
//   /svc7/r42/list   /svc7/r43/:id   /svc7/r44/files/*path
std::string pattern_of(std::size_t i) {
  const std::string base = "/svc" + std::to_string(i % 100) + "/r" + std::to_string(i);
  switch (i % 3) {
    case 0:
      return base + "/list";
    case 1:
      return base + "/:id";
    default:
      return base + "/files/*path";
  }
}

std::string path_for(std::size_t i) {
  const std::string base = "/svc" + std::to_string(i % 100) + "/r" + std::to_string(i);
  switch (i % 3) {
    case 0:
      return base + "/list";
    case 1:
      return base + "/12345";
    default:
      return base + "/files/css/site.css";
  }
}

const route_fixture& routes_of(std::size_t count) {
  static std::map<std::size_t, std::unique_ptr<route_fixture>> cache;
  auto& slot = cache[count];
  if (slot) {
    return *slot;
  }
  slot = std::make_unique<route_fixture>();
  for (std::size_t i = 0; i < count; ++i) {
    slot->table.add(fezz::route{"GET", pattern_of(i), "fn" + std::to_string(i)});
  }
  for (std::size_t i = 0; i < 8; ++i) {
    slot->fixed_paths.push_back(path_for(i % count));
  }
  std::mt19937_64 random(42);
  std::uniform_int_distribution<std::size_t> pick(0, count - 1);
  for (std::size_t i = 0; i < 4096; ++i) {
    slot->random_paths.push_back(path_for(pick(random)));
  }
  // Every path must find its route, or the benchmark measures misses.
  for (const auto* paths : {&slot->fixed_paths, &slot->random_paths}) {
    for (const auto& path : *paths) {
      if (!slot->table.find(path, "GET")) {
        std::fprintf(stderr, "fezz_micro: no route for %s\n", path.c_str());
        std::abort();
      }
    }
  }
  return *slot;
}

void lookup(benchmark::State& state, const std::vector<std::string>& paths,
            const fezz::route_table& table) {
  const std::size_t mask = paths.size() - 1;  // sizes are powers of two
  std::size_t i = 0;
  for (auto _ : state) {
    auto match = table.find(paths[i++ & mask], "GET");
    benchmark::DoNotOptimize(match);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void route_lookup_fixed(benchmark::State& state) {
  const auto& f = routes_of(static_cast<std::size_t>(state.range(0)));
  lookup(state, f.fixed_paths, f.table);
}

void route_lookup_random(benchmark::State& state) {
  const auto& f = routes_of(static_cast<std::size_t>(state.range(0)));
  lookup(state, f.random_paths, f.table);
}

BENCHMARK(route_lookup_fixed)->Name("route_lookup/fixed")->Arg(10)->Arg(1'000)->Arg(100'000);
BENCHMARK(route_lookup_random)->Name("route_lookup/random")->Arg(10)->Arg(1'000)->Arg(100'000);

// ---- registry ----

struct bench_function {
  fezz::response fetch(const fezz::request&, fezz::context&) const {
    return fezz::response::text("Hello, World!");
  }
};

constexpr fezz::manifest bench_manifest{.id = "bench", .path = "/bench"};

// A registry with one function on its own io_context. Its logger has no sinks:
// the registry's log lines are formatted, as in the server, but not written.
struct registry_fixture {
  asio::io_context io{1};
  std::shared_ptr<spdlog::logger> logger = std::make_shared<spdlog::logger>("bench");
  fezz::host::function_registry registry{io.get_executor(), logger};
  fezz::host::function_registry::handle slot;

  registry_fixture() {
    auto info = std::make_shared<fezz::function_info>();
    info->manifest = fezz::owned_manifest(bench_manifest);
    info->logger = logger;
    slot = registry.add(fezz::function_registration::of<bench_function>(bench_manifest),
                        std::move(info));
  }

  // acquire() from a coroutine, run until the lease is in hand; the lease is
  // released when the coroutine ends.
  void acquire_once() {
    bool leased = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto lease = co_await slot->acquire();
          leased = static_cast<bool>(lease);
        },
        asio::detached);
    io.restart();
    io.run();
    if (!leased) {
      std::fprintf(stderr, "fezz_micro: acquire failed\n");
      std::abort();
    }
  }

  void unload() {
    slot->retire();
    io.restart();
    io.run();
    if (slot->loaded()) {
      std::fprintf(stderr, "fezz_micro: unload did not finish\n");
      std::abort();
    }
  }
};

void registry_try_acquire_release(benchmark::State& state) {
  registry_fixture f;
  f.acquire_once();  // loads it
  for (auto _ : state) {
    auto lease = f.slot->try_acquire();
    benchmark::DoNotOptimize(lease);
  }
  f.unload();
}
BENCHMARK(registry_try_acquire_release);

void registry_acquire_loaded(benchmark::State& state) {
  registry_fixture f;
  f.acquire_once();
  for (auto _ : state) {
    f.acquire_once();
  }
  f.unload();
}
BENCHMARK(registry_acquire_loaded);

void registry_cold_load(benchmark::State& state) {
  registry_fixture f;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    f.acquire_once();
    const auto took = std::chrono::steady_clock::now() - start;
    f.unload();
    state.SetIterationTime(std::chrono::duration<double>(took).count());
  }
}
BENCHMARK(registry_cold_load)->UseManualTime();

// ---- metrics ----

fezz::host::function_metrics shared_metrics;

void metrics_update(benchmark::State& state) {
  // Latencies across the first buckets, as a fast function's would fall.
  constexpr std::array<std::chrono::nanoseconds, 4> samples{
      std::chrono::microseconds(30), std::chrono::microseconds(120), std::chrono::microseconds(40),
      std::chrono::microseconds(700)};
  std::size_t i = static_cast<std::size_t>(state.thread_index());
  for (auto _ : state) {
    fezz::host::function_metrics::bump(shared_metrics.requests);
    shared_metrics.latency.record(samples[i++ & 3]);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(metrics_update)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
