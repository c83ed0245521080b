#pragma once

// What every connection of one server shares: settings, the registry, the
// published routes and the host's own counters.

#include <fezz/config.hpp>
#include <fezz/detail/log_limiter.hpp>
#include <fezz/function_store.hpp>
#include <fezz/host/function_registry.hpp>
#include <fezz/host/module_cache.hpp>
#include <fezz/host/routing.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

namespace fezz::host {

struct server_metrics {
  std::atomic<std::uint64_t> connections_total{0};
  std::atomic<std::uint64_t> connections_active{0};
  std::atomic<std::uint64_t> connections_refused{0};
  std::atomic<std::uint64_t> requests_total{0};
  // Requests answered by the connection itself (400, 413, 414, 417, 431, 501).
  std::atomic<std::uint64_t> rejected_total{0};
  // Requests refused with 429 at a function's or the host's cap on calls.
  std::atomic<std::uint64_t> throttled_total{0};
  // Function calls admitted and not yet answered; counted only under config::max_in_flight.
  std::atomic<std::uint64_t> calls{0};
  // Responses by status class: [0] 1xx ... [4] 5xx.
  std::array<std::atomic<std::uint64_t>, 5> responses{};

  void count_response(unsigned status) noexcept {
    if (status >= 100 && status < 600) {
      responses[status / 100 - 1].fetch_add(1, std::memory_order_relaxed);
    }
  }
};

struct host_state {
  host_state(config c, boost::asio::any_io_executor executor)
      : settings(std::move(c)),
        request_log(std::make_shared<detail::log_limiter>(settings.request_log_limit())),
        registry(std::move(executor), settings.logger(), request_log),
        modules(std::make_shared<module_cache>(settings.module_cache().empty()
                                                   ? module_cache::default_folder()
                                                   : std::filesystem::path(settings.module_cache()),
                                               settings.max_module_bytes())) {}

  const config settings;
  // The control-plane store, for /_metrics; set by the server, which owns it.
  function_store* store = nullptr;
  // For lines about single requests, which clients can trigger at will.
  const std::shared_ptr<detail::log_limiter> request_log;
  function_registry registry;
  // Modules open in this host, shared with the configurations that load from them.
  const std::shared_ptr<module_cache> modules;
  routing_source routing;
  server_metrics metrics;
  // Draining: /_health fails and every answer tells the proxy to look elsewhere,
  // while the host still serves as usual for config::drain_grace.
  std::atomic<bool> draining{false};
  // Closing, after the grace: no new connections, no keep-alive.
  std::atomic<bool> closing{false};
  const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  spdlog::logger& log() const noexcept { return *settings.logger(); }
};

}  // namespace fezz::host
