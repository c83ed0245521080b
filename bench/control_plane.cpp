// bench_control_plane: how fast a store change reaches the routes, at the
// scale of a platform. With the in-memory store and the host's own route
// publisher and routing source (the parts a fezz::server is made of, without
// sockets), it measures:
//
//   register   N functions registered with a server (code + store entry + route)
//   change     one entry changed (new path): event in -> a snapshot that routes it, median and p99
//   burst      10,000 changes in a row, then the first snapshot that has them all
//   memory     RSS per routed function after registering N
//
//   bench_control_plane [N=100000] [--json FILE]
//
// Each figure is also written as JSON (--json) for bench/run's report.

#include <fezz/fezz.hpp>

#include <spdlog/sinks/null_sink.h>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct hello {
  fezz::response fetch(const fezz::request&, fezz::context&) const {
    return fezz::response::text("hi");
  }
};

double rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stod(line.substr(6)) / 1024.0;
    }
  }
  return 0;
}

double ms_since(clock_type::time_point start) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
}

double percentile(std::vector<double> samples, double p) {
  std::sort(samples.begin(), samples.end());
  return samples[static_cast<std::size_t>(p * static_cast<double>(samples.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t n = 100'000;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else {
      n = std::stoul(arg);
    }
  }
  auto quiet =
      std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
  nlohmann::json out{{"functions", n}};

  // Ids and paths outlive the manifests that view them.
  std::vector<std::string> ids(n);
  std::vector<std::string> paths(n);
  for (std::size_t i = 0; i < n; ++i) {
    ids[i] = "fn-" + std::to_string(i);
    paths[i] = "/t" + std::to_string(i % 100) + "/fn/" + std::to_string(i) + "/:id";
  }

  // 1. Registration through a server: code, store entry, route.
  const double rss_before = rss_mib();
  auto store = std::make_shared<fezz::memory_store>();
  double register_ms = 0;
  double rss_after = 0;
  {
    fezz::server server(fezz::config().logger(quiet).threads(1).register_macro_functions(false),
                        store);
    const auto started = clock_type::now();
    for (std::size_t i = 0; i < n; ++i) {
      server.register_function<hello>(fezz::manifest{.id = ids[i], .path = paths[i]});
    }
    register_ms = ms_since(started);
    rss_after = rss_mib();
  }  // the store keeps the entries; the server, which watched it, goes
  out["register_ms"] = register_ms;
  out["memory_bytes_per_function"] =
      (rss_after - rss_before) * 1024 * 1024 / static_cast<double>(n);
  std::printf("register %zu functions: %.0f ms (%.1f us each)\n", n, register_ms,
              register_ms * 1000 / static_cast<double>(n));
  std::printf("memory per routed function: %.0f bytes (RSS %.1f -> %.1f MiB)\n",
              out["memory_bytes_per_function"].get<double>(), rss_before, rss_after);

  // 2. One change at a time: event in -> a snapshot that routes the new path.
  // The host's parts without sockets: the same publisher and source a server uses.
  boost::asio::io_context io;
  fezz::host::host_state host(fezz::config().logger(quiet), io.get_executor());
  for (std::size_t i = 0; i < n; ++i) {
    host.registry.add(fezz::function_registration::of<hello>(fezz::manifest{.id = ids[i]}),
                      nullptr);
  }
  fezz::host::route_publisher publisher(host, *store);
  const auto rebuild_started = clock_type::now();
  publisher.rebuild();
  out["initial_sync_ms"] = ms_since(rebuild_started);
  auto subscription = store->watch([&](const fezz::store_event& e) { publisher.apply(e); });
  std::uint64_t version = 0;
  host.routing.current(version);  // readers hold a snapshot, as connections do

  std::mt19937 rng(42);
  std::vector<double> change_us;
  for (int round = 0; round < 1000; ++round) {
    const std::size_t k = rng() % n;
    const std::string moved = "/moved/" + std::to_string(round) + "/:id";
    const auto t0 = clock_type::now();
    store->register_function(
        fezz::function_entry(fezz::owned_manifest(ids[k], "v2", "GET", moved)));
    const auto snapshot = host.routing.current(version);
    const auto match = snapshot->routes.find("/moved/" + std::to_string(round) + "/x", "GET");
    change_us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
    if (!match || match->matched->function_id != ids[k]) {
      std::cerr << "change " << round << " is not routed\n";
      return 1;
    }
  }
  out["change_median_us"] = percentile(change_us, 0.5);
  out["change_p99_us"] = percentile(change_us, 0.99);
  std::printf("one change, event in -> snapshot that routes it: median %.1f us, p99 %.1f us\n",
              out["change_median_us"].get<double>(), out["change_p99_us"].get<double>());

  // 3. A burst: 10,000 changes, then the first snapshot that has them all.
  const auto burst_started = clock_type::now();
  for (int i = 0; i < 10'000; ++i) {
    const std::size_t k = static_cast<std::size_t>(i) * 7 % n;
    store->register_function(fezz::function_entry(
        fezz::owned_manifest(ids[k], "v3", "GET", "/burst/" + std::to_string(i) + "/:id")));
  }
  const auto snapshot = host.routing.current(version);
  out["burst_10000_ms"] = ms_since(burst_started);
  if (!snapshot->routes.find("/burst/9999/x", "GET")) {
    std::cerr << "the burst's last change is not routed\n";
    return 1;
  }
  std::printf("burst of 10,000 changes, then a snapshot: %.0f ms\n",
              out["burst_10000_ms"].get<double>());

  if (!json_path.empty()) {
    std::ofstream(json_path) << out.dump(2) << "\n";
  }
  return 0;
}
