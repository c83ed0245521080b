#pragma once

// fezz::server: the Beast HTTP host. It accepts connections, follows a
// control-plane store into a routing snapshot, and loads, runs and unloads the
// functions it has code for.
//
//   fezz::server server(fezz::config().port(8080));
//   server.register_function<my_function>();   // FEZZ_FUNCTIONs are picked up by themselves
//   server.run();                               // until SIGINT/SIGTERM, then drains
//
// What it is made of lives in <fezz/host/...>: the listener and connections
// (the request's path), the registry of functions, and the route publisher
// (the control plane's path).

#include <fezz/config.hpp>
#include <fezz/detail/async.hpp>
#include <fezz/detail/date_text.hpp>
#include <fezz/function.hpp>
#include <fezz/function_store.hpp>
#include <fezz/host/host_state.hpp>
#include <fezz/host/listener.hpp>
#include <fezz/host/route_publisher.hpp>
#include <fezz/memory_store.hpp>
#include <fezz/version.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace fezz {

class server {
 public:
  explicit server(config settings = {}, std::shared_ptr<function_store> store = nullptr);
  // Port 8080 on every address, an in-memory store.
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
  inline void register_function(function_registration registration);

  function_store& store() noexcept { return *store_; }
  const config& settings() const noexcept { return host_.settings; }

  // Binds, listens and starts the worker threads; returns at once. Throws
  // boost::system::system_error if the address cannot be bound.
  inline void start();
  // start() if needed, then blocks until the server has stopped and drained.
  void run() {
    if (!started_) {
      start();
    }
    wait();
  }
  // Begins the drain: stop accepting, finish in-flight requests (up to the
  // drain timeout), unload every function, stop the threads. Thread-safe.
  void stop() {
    boost::asio::post(control_, [this] { begin_drain(); });
  }
  // Blocks until the drain is complete and the threads have ended; then leaves the
  // store's membership.
  void wait() {
    for (auto& t : threads_) {
      if (t.joinable()) {
        t.join();
      }
    }
    threads_.clear();
    leave_store();
  }

  // The bound port (the real one when the config asked for port 0).
  std::uint16_t port() const noexcept { return port_.load(); }
  bool draining() const noexcept { return host_.draining.load(); }

 private:
  // The io_context comes first, so that host_ can be built before it and outlive it.
  inline server(std::unique_ptr<boost::asio::io_context> io, config&& settings,
                std::shared_ptr<function_store> store);

  inline boost::asio::awaitable<void> reap_idle();
  inline boost::asio::awaitable<void> drain();
  inline void begin_drain();
  inline std::string advertised_address() const;
  inline void leave_store();

  // Declared before io_ so it is destroyed after it: coroutine frames that a
  // drain timeout left behind die with io_ and still release their leases.
  host::host_state host_;
  std::unique_ptr<boost::asio::io_context> io_;
  boost::asio::strand<boost::asio::io_context::executor_type> control_;  // listener, signals,
                                                                         // reaper, drain
  std::shared_ptr<function_store> store_;
  host::route_publisher publisher_;
  host::listener listener_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer reaper_timer_;
  std::atomic<std::uint16_t> port_{0};
  std::atomic<bool> started_{false};
  std::atomic<bool> stop_requested_{false};
  std::vector<std::thread> threads_;
  bool joined_ = false;                // the store holds our node record
  std::future<void> marked_draining_;  // the store call that marks it draining

  subscription store_subscription_;  // last: unsubscribes before the rest goes
};

inline server::server(config settings, std::shared_ptr<function_store> store)
    : server(
          std::make_unique<boost::asio::io_context>(static_cast<int>(settings.effective_threads())),
          std::move(settings), std::move(store)) {}

inline server::server(std::unique_ptr<boost::asio::io_context> io, config&& settings,
                      std::shared_ptr<function_store> store)
    : host_(std::move(settings), io->get_executor()),
      io_(std::move(io)),
      control_(boost::asio::make_strand(*io_)),
      store_(store ? std::move(store) : std::make_shared<memory_store>()),
      publisher_(host_, *store_),
      listener_(host_, *io_, control_),
      signals_(control_),
      reaper_timer_(control_) {
  host_.store = store_.get();
  store_subscription_ =
      store_->watch([this](const store_event& event) { publisher_.apply(event); });
  if (host_.settings.register_macro_functions()) {
    for (auto& registration : registered_functions()) {
      register_function(std::move(registration));
    }
  }
  publisher_.rebuild();
}

inline server::~server() {
  if (started_) {
    stop();
    wait();
  }
  store_subscription_.reset();
}

inline void server::register_function(function_registration registration) {
  const auto& m = registration.static_manifest;
  if (const auto problem = manifest_problem(m); !problem.empty()) {
    throw std::invalid_argument("function '" + std::string(m.id) + "': " + std::string(problem));
  }
  const std::string id(m.id);
  // The slot gets its configuration when the publisher routes it.
  host_.registry.add(std::move(registration), nullptr);
  // A fresh store (or cluster) serves the function at once: an entry is made from the
  // manifest unless the store has one, whose routing then wins. Only if absent, so that
  // nodes starting together never overwrite what the control plane set.
  try {
    if (store_->get(id) || !store_->create(function_entry(owned_manifest(m)))) {
      publisher_.refresh(id);  // the store describes it already; now there is code
    }                          // else the watch routes it
  } catch (const store_error& e) {
    host_.log().warn("no store entry made for '{}' ({}); it is routed once one appears", id,
                     e.what());
  }
}

inline void server::start() {
  if (started_.exchange(true)) {
    throw std::logic_error("fezz::server::start called twice");
  }
  const auto& s = host_.settings;
  port_ = listener_.open();
  // Membership: refused (store_error) if a live node has this name.
  store_->join(node_record{s.node(), advertised_address(), "serving", detail::utc_now_rfc3339(),
                           std::string(fezz::version)});
  joined_ = true;
  s.logger()->info("listening on {}:{} as node '{}'", s.host(), port_.load(), s.node());

  const auto log_failure = detail::log_failure{s.logger()};
  boost::asio::co_spawn(control_, listener_.accept_loop(), log_failure);
  boost::asio::co_spawn(control_, reap_idle(), log_failure);
  boost::asio::co_spawn(control_, listener_.sweep_deadlines(), log_failure);
  if (s.handle_signals()) {
    signals_.add(SIGINT);
    signals_.add(SIGTERM);
    signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
      if (!ec) {
        host_.log().info("signal {}: draining", signal);
        begin_drain();
      }
    });
  }
  const unsigned n = s.effective_threads();
  threads_.reserve(n);
  for (unsigned i = 0; i < n; ++i) {
    threads_.emplace_back([this] { io_->run(); });
  }
}

inline boost::asio::awaitable<void> server::reap_idle() {
  const auto idle = host_.settings.idle_timeout();
  const auto interval = std::clamp<config::duration>(idle / 4, std::chrono::milliseconds(10),
                                                     std::chrono::seconds(1));
  while (!host_.closing) {
    reaper_timer_.expires_after(interval);
    auto [ec] = co_await reaper_timer_.async_wait(detail::nothrow_awaitable);
    if (ec) {
      co_return;
    }
    host_.registry.unload_idle(idle);
    publisher_.drop_retired_versions();
  }
}

// Runs on the control strand.
inline void server::begin_drain() {
  if (stop_requested_.exchange(true)) {
    return;
  }
  host_.draining = true;
  boost::system::error_code ignored;
  signals_.cancel(ignored);
  // A store call may wait on the network: off the host's threads.
  if (joined_) {
    marked_draining_ = std::async(std::launch::async, [this] {
      try {
        store_->set_node_state("draining");
      } catch (const store_error& e) {
        host_.log().warn("could not mark node '{}' draining: {}", host_.settings.node(), e.what());
      }
    });
  }
  boost::asio::co_spawn(control_, drain(), detail::log_failure{host_.settings.logger()});
}

// Runs on the control strand: the grace, then closing, then unloading.
inline boost::asio::awaitable<void> server::drain() {
  using clock = std::chrono::steady_clock;
  auto& log = host_.log();
  boost::asio::steady_timer timer(control_);
  if (const auto grace = host_.settings.drain_grace(); grace > config::duration::zero()) {
    log.info("draining: /_health fails; serving as usual for {} ms more",
             std::chrono::duration_cast<std::chrono::milliseconds>(grace).count());
    timer.expires_after(grace);
    co_await timer.async_wait(detail::nothrow_awaitable);
  }
  host_.closing = true;
  listener_.stop_accepting();
  reaper_timer_.cancel();
  listener_.close_idle();
  const auto deadline = clock::now() + host_.settings.drain_timeout();
  while (host_.metrics.connections_active.load() > 0 && clock::now() < deadline) {
    timer.expires_after(std::chrono::milliseconds(5));
    co_await timer.async_wait(detail::nothrow_awaitable);
  }
  if (const auto left = host_.metrics.connections_active.load(); left > 0) {
    log.warn("drain timeout: closing {} connection(s) still busy", left);
    listener_.close_all();
  }
  const bool unloaded =
      co_await host_.registry.unload_all(clock::now() + host_.settings.drain_timeout());
  if (!unloaded) {
    log.warn("drain: some functions did not unload in time");
  }
  log.info("drained; stopping");
  listener_.stop_sweeping();
  io_->stop();
}

inline std::string server::advertised_address() const {
  const auto& s = host_.settings;
  if (!s.advertise().empty()) {
    return s.advertise();
  }
  std::string host = s.host();
  if (host == "0.0.0.0" || host == "::") {
    char name[256] = {};
    host = ::gethostname(name, sizeof name - 1) == 0 ? name : "localhost";
  } else if (host.find(':') != std::string::npos) {
    host = "[" + host + "]";
  }
  return "http://" + host + ":" + std::to_string(port_.load());
}

inline void server::leave_store() {
  if (!joined_) {
    return;
  }
  joined_ = false;
  if (marked_draining_.valid()) {
    marked_draining_.wait();
  }
  try {
    store_->leave();
  } catch (const store_error& e) {
    host_.log().warn("could not leave the store as node '{}': {}", host_.settings.node(), e.what());
  }
}

}  // namespace fezz
