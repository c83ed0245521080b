#pragma once

// fezz::server: the Beast HTTP host. It accepts connections, follows a
// control-plane store into a routing snapshot, and loads, runs and unloads the
// functions its registry has code for.
//
//   fezz::server server(fezz::config().port(8080));
//   server.register_function<my_function>();   // FEZZ_FUNCTIONs are picked up by themselves
//   server.run();                               // until SIGINT/SIGTERM, then drains

#include <fezz/config.hpp>
#include <fezz/detail/connection.hpp>
#include <fezz/detail/host_state.hpp>
#include <fezz/function.hpp>
#include <fezz/function_registry.hpp>
#include <fezz/function_store.hpp>
#include <fezz/memory_store.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace fezz {

class server {
 public:
  explicit server(config settings = {}, std::shared_ptr<function_store> store = nullptr);
  // The seed's HhrfServer::with_defaults(): port 8080, in-memory store.
  static server with_defaults() { return server(config{}); }
  server(const server&) = delete;
  server& operator=(const server&) = delete;
  // Stops and drains if still running.
  ~server();

  // Code for a function the host can load. FEZZ_FUNCTION types are registered
  // already (unless config::register_macro_functions is off); a type with a
  // static `manifest` needs no arguments; any other type
  // takes its manifest, and constructor arguments the factory copies into
  // each new instance. Unless the store already has an entry for the id, one
  // is added from the manifest, which routes it. Throws std::invalid_argument
  // for an invalid manifest or an id that already has code.
  template <function_with_manifest F>
  void register_function() {
    register_function(function_registration::of<F>(F::manifest));
  }
  template <function F, class... Args>
  void register_function(const manifest& m, Args... args) {
    register_function(function_registration::of<F>(m, std::move(args)...));
  }
  void register_function(function_registration registration);

  function_store& store() noexcept { return *store_; }
  function_registry& registry() noexcept { return host_->registry; }
  const config& settings() const noexcept { return host_->settings; }

  // Binds, listens and starts the worker threads; returns at once. Throws
  // boost::system::system_error if the address cannot be bound.
  void start();
  // start() if needed, then blocks until the server has stopped and drained.
  void run();
  // Begins the drain: stop accepting, finish in-flight requests (up to the
  // drain timeout), unload every function, stop the threads. Thread-safe.
  void stop();
  // Blocks until the drain is complete and the threads have ended.
  void wait();

  // The bound port (the real one when the config asked for port 0).
  std::uint16_t port() const noexcept { return port_.load(); }
  bool draining() const noexcept { return host_->draining.load(); }

 private:
  using executor_type = boost::asio::io_context::executor_type;

  void rebuild_routes();
  std::shared_ptr<const function_info> info_for(const function_entry& entry) const;
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> reap_idle();
  boost::asio::awaitable<void> sweep_deadlines();
  boost::asio::awaitable<void> drain();
  void begin_drain();
  boost::asio::any_io_executor connection_executor();

  // Declared before io_ so it is destroyed after it: coroutine frames that a
  // drain timeout left behind die with io_ and still release their leases.
  std::unique_ptr<detail::host_state> host_;
  boost::asio::io_context io_;
  boost::asio::strand<executor_type> control_;  // acceptor, signals, reaper, drain
  std::shared_ptr<function_store> store_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer reaper_timer_;
  boost::asio::steady_timer sweeper_timer_;
  std::atomic<std::uint16_t> port_{0};
  std::atomic<bool> started_{false};
  std::atomic<bool> stop_requested_{false};
  std::vector<std::thread> threads_;

  std::mutex routes_mutex_;  // control path: rebuilding the routing snapshot
  std::map<std::string, std::shared_ptr<const function_info>, std::less<>> infos_;

  std::mutex connections_mutex_;
  std::unordered_map<detail::connection*, std::weak_ptr<detail::connection>> connections_;

  subscription store_subscription_;  // last: unsubscribes before the rest goes
};

}  // namespace fezz

#include <fezz/impl/server.ipp>
