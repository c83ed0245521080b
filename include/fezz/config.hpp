#pragma once

// fezz::config: the host's settings, set with a chaining builder. Each setting is
// read by `name()` and set by `name(value)`, which returns the config so calls chain:
//
//   auto cfg = fezz::config().host("0.0.0.0").port(8080).env("API_KEY", "secret");

#include <fezz/env_map.hpp>

#include <spdlog/logger.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace fezz {

class config {
 public:
  using duration = std::chrono::steady_clock::duration;

#define FEZZ_CONFIG_SETTING(type, name, initial) \
 public:                                         \
  const type& name() const noexcept {            \
    return name##_;                              \
  }                                              \
  config& name(type value) {                     \
    name##_ = std::move(value);                  \
    return *this;                                \
  }                                              \
                                                 \
 private:                                        \
  type name##_ = initial;

  // Where to listen. Port 0 picks a free port (see server::port()).
  FEZZ_CONFIG_SETTING(std::string, host, "0.0.0.0")
  FEZZ_CONFIG_SETTING(std::uint16_t, port, 8080)
  // Worker threads running the io_context; 0 means one per core.
  FEZZ_CONFIG_SETTING(unsigned, threads, 0)
  // This host's name in the control plane: entries listing other nodes are not served
  // here, and start() registers it as a node (refused if a live node has the name).
  FEZZ_CONFIG_SETTING(std::string, node, "node-1")
  // Where peers and operators reach this node, in its node record: a URL. Empty: made
  // from the host and the bound port at start() (the machine's name for 0.0.0.0).
  FEZZ_CONFIG_SETTING(std::string, advertise, "")
  // Where modules are kept once their bytes are checked (see <fezz/module.hpp>).
  // Empty: fezz-modules-<uid> in the system's temporary folder.
  FEZZ_CONFIG_SETTING(std::string, module_cache, "")
  // A module larger than this is refused (its function answers 503) before it is read.
  FEZZ_CONFIG_SETTING(std::size_t, max_module_bytes, 256 * 1024 * 1024)
  // A loaded function idle this long is unloaded.
  FEZZ_CONFIG_SETTING(duration, idle_timeout, std::chrono::seconds(300))
  // Request limits: body (413), header section (431), request target (414).
  FEZZ_CONFIG_SETTING(std::size_t, max_body_bytes, 8 * 1024 * 1024)
  FEZZ_CONFIG_SETTING(std::size_t, max_header_bytes, 16 * 1024)
  FEZZ_CONFIG_SETTING(std::size_t, max_target_bytes, 8 * 1024)
  // A chunked body's chunk-size line, extensions included (400 beyond it).
  FEZZ_CONFIG_SETTING(std::size_t, max_chunk_line_bytes, 4 * 1024)
  // Time to receive a whole header section once its first byte arrived; a client
  // slower than that is cut off (the connection closes without an answer).
  FEZZ_CONFIG_SETTING(duration, header_timeout, std::chrono::seconds(10))
  // Time to receive a body; past it the connection closes.
  FEZZ_CONFIG_SETTING(duration, body_timeout, std::chrono::seconds(30))
  // How long an idle keep-alive connection waits for its next request.
  FEZZ_CONFIG_SETTING(duration, keep_alive_timeout, std::chrono::seconds(60))
  // Time to write one response before the connection is dropped.
  FEZZ_CONFIG_SETTING(duration, write_timeout, std::chrono::seconds(30))
  // After rejecting a request, how long to read and drop what the client still
  // sends before closing, so that the close cannot reset the answer away. 0: close at once.
  FEZZ_CONFIG_SETTING(duration, linger_timeout, std::chrono::seconds(2))
  // On SIGINT/SIGTERM or stop(): first, for this long, /_health fails and every
  // answer says the host is draining while it goes on serving as usual, so a
  // proxy takes it out of rotation before anything is refused.
  FEZZ_CONFIG_SETTING(duration, drain_grace, std::chrono::seconds(0))
  // Then it stops accepting and closes idle connections: how long in-flight
  // requests get to finish.
  FEZZ_CONFIG_SETTING(duration, drain_timeout, std::chrono::seconds(10))
  // Listen backlog and a cap on open connections (beyond it, new ones are closed at once).
  FEZZ_CONFIG_SETTING(int, backlog, 1024)
  FEZZ_CONFIG_SETTING(std::size_t, max_connections, 10'000)
  // At start, raise the soft limit on open descriptors to the hard one (as
  // nginx's worker_rlimit_nofile does); each connection takes one.
  FEZZ_CONFIG_SETTING(bool, raise_descriptor_limit, true)
  // Function calls in flight at once on this host; beyond it a request gets
  // 429 with Retry-After. 0: no limit. (Each function may cap its own too:
  // manifest max_concurrency.)
  FEZZ_CONFIG_SETTING(std::size_t, max_in_flight, 0)
  // Warnings and errors about single requests (a function that threw or timed
  // out, a failed load) are what clients can trigger at will: at most this many
  // lines a second, the rest counted. 0: no limit.
  FEZZ_CONFIG_SETTING(unsigned, request_log_limit, 20)
  // Serve the FEZZ_FUNCTION registrations of the program without registering them by hand.
  FEZZ_CONFIG_SETTING(bool, register_macro_functions, true)
  // Install SIGINT/SIGTERM handlers in run().
  FEZZ_CONFIG_SETTING(bool, handle_signals, true)
  FEZZ_CONFIG_SETTING(std::shared_ptr<spdlog::logger>, logger, spdlog::default_logger())

#undef FEZZ_CONFIG_SETTING

 public:
  // The global environment every function sees (a function's own entries win).
  config& env(std::string key, std::string value) {
    env_.insert_or_assign(std::move(key), std::move(value));
    return *this;
  }
  const env_map& env() const noexcept {
    return env_;
  }

  unsigned effective_threads() const noexcept {
    return threads_ != 0 ? threads_ : std::max(1U, std::thread::hardware_concurrency());
  }

 private:
  env_map env_;
};

}  // namespace fezz
