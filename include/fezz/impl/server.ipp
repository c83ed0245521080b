#pragma once

#include <spdlog/sinks/sink.h>

#include <algorithm>
#include <chrono>

namespace fezz {

inline server::server(config settings, std::shared_ptr<function_store> store)
    : io_(static_cast<int>(settings.effective_threads())),
      control_(boost::asio::make_strand(io_)),
      store_(store ? std::move(store) : std::make_shared<memory_store>()),
      acceptor_(control_),
      signals_(control_),
      reaper_timer_(control_),
      sweeper_timer_(control_) {
  host_ = std::make_unique<detail::host_state>(std::move(settings), io_.get_executor());
  store_subscription_ = store_->watch([this](const store_event&) { rebuild_routes(); });
  if (host_->settings.register_macro_functions()) {
    for (auto& registration : registered_functions()) {
      register_function(std::move(registration));
    }
  }
  rebuild_routes();
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
  const owned_manifest owned(m);
  function_entry entry(owned);
  auto info = info_for(entry);
  host_->registry.add(std::move(registration), std::move(info));
  if (!store_->get(owned.id)) {
    store_->register_function(std::move(entry));  // the watch rebuilds the routes
  } else {
    rebuild_routes();  // the store already describes it; now there is code
  }
}

inline std::shared_ptr<const function_info> server::info_for(const function_entry& entry) const {
  auto info = std::make_shared<function_info>();
  info->manifest = entry.manifest;
  info->env.insert(host_->settings.env().begin(), host_->settings.env().end());
  for (const auto& [key, value] : entry.env) {
    info->env.insert_or_assign(key, value);
  }
  const auto& base = host_->settings.logger();
  auto logger =
      std::make_shared<spdlog::logger>(entry.id(), base->sinks().begin(), base->sinks().end());
  logger->set_level(base->level());
  info->logger = std::move(logger);
  return info;
}

inline void server::rebuild_routes() {
  std::lock_guard lock(routes_mutex_);
  auto next = std::make_shared<detail::routing_snapshot>();
  std::map<std::string, std::shared_ptr<const function_info>, std::less<>> infos;
  auto& log = host_->log();
  for (const auto& entry : store_->list()) {
    if (!entry.serves(host_->settings.node())) {
      continue;
    }
    const auto slot = host_->registry.find(entry.id());
    if (!slot) {
      log.debug("store entry '{}' has no code in this binary", entry.id());
      continue;
    }
    // Keep the configuration object of an unchanged entry, so its instance stays loaded.
    std::shared_ptr<const function_info> info = info_for(entry);
    if (const auto it = infos_.find(entry.id()); it != infos_.end() &&
                                                 it->second->manifest == info->manifest &&
                                                 it->second->env == info->env) {
      info = it->second;
    }
    try {
      next->routes.add(route{entry.manifest.method, entry.manifest.path, entry.id()});
    } catch (const std::invalid_argument& e) {
      log.error("not routing '{}': {}", entry.id(), e.what());
      continue;
    }
    host_->registry.configure(slot, info);
    next->targets.emplace(entry.id(), detail::routing_target{slot, info});
    infos.emplace(entry.id(), std::move(info));
  }
  for (const auto& [id, info] : infos_) {
    if (!infos.contains(id)) {
      if (const auto slot = host_->registry.find(id)) {
        host_->registry.retire(slot);
        log.info("'{}' is no longer routed here", id);
      }
    }
  }
  infos_ = std::move(infos);
  host_->routing.publish(std::move(next));
}

inline boost::asio::any_io_executor server::connection_executor() {
  // One thread needs no strand; several need one per connection.
  if (host_->settings.effective_threads() == 1) {
    return io_.get_executor();
  }
  return boost::asio::make_strand(io_);
}

inline void server::start() {
  if (started_.exchange(true)) {
    throw std::logic_error("fezz::server::start called twice");
  }
  namespace ip = boost::asio::ip;
  const auto& s = host_->settings;
  const ip::tcp::endpoint endpoint(ip::make_address(s.host()), s.port());
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(ip::tcp::acceptor::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(s.backlog());
  port_ = acceptor_.local_endpoint().port();

  const auto log_failure = detail::log_failure{s.logger()};
  boost::asio::co_spawn(control_, accept_loop(), log_failure);
  boost::asio::co_spawn(control_, reap_idle(), log_failure);
  boost::asio::co_spawn(control_, sweep_deadlines(), log_failure);
  if (s.handle_signals()) {
    signals_.add(SIGINT);
    signals_.add(SIGTERM);
    signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
      if (!ec) {
        host_->log().info("signal {}: draining", signal);
        begin_drain();
      }
    });
  }
  const unsigned n = s.effective_threads();
  threads_.reserve(n);
  for (unsigned i = 0; i < n; ++i) {
    threads_.emplace_back([this] { io_.run(); });
  }
}

inline void server::run() {
  if (!started_) {
    start();
  }
  wait();
}

inline void server::stop() {
  boost::asio::post(control_, [this] { begin_drain(); });
}

inline void server::wait() {
  for (auto& t : threads_) {
    if (t.joinable()) {
      t.join();
    }
  }
  threads_.clear();
}

inline boost::asio::awaitable<void> server::accept_loop() {
  const auto& s = host_->settings;
  s.logger()->info("listening on {}:{}", s.host(), port_.load());
  for (;;) {
    auto executor = connection_executor();  // named: no temporaries inside co_await (g++ 12)
    auto [ec, socket] = co_await acceptor_.async_accept(executor, detail::nothrow_awaitable);
    if (ec) {
      if (ec == boost::asio::error::operation_aborted || !acceptor_.is_open()) {
        co_return;
      }
      // Out of descriptors and the like: keep serving the connections we have.
      s.logger()->warn("accept failed: {}", ec.message());
      continue;
    }
    auto& m = host_->metrics;
    if (m.connections_active.load(std::memory_order_relaxed) >= s.max_connections()) {
      m.connections_refused.fetch_add(1, std::memory_order_relaxed);
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
    m.connections_total.fetch_add(1, std::memory_order_relaxed);
    m.connections_active.fetch_add(1, std::memory_order_relaxed);
    auto c = std::make_shared<detail::connection>(*host_, std::move(socket));
    {
      std::lock_guard lock(connections_mutex_);
      connections_.emplace(c.get(), c);
    }
    auto done = [this, c](const std::exception_ptr& e) {
      if (e) {
        detail::log_failure{host_->settings.logger()}(e);
      }
      {
        std::lock_guard lock(connections_mutex_);
        connections_.erase(c.get());
      }
      host_->metrics.connections_active.fetch_sub(1, std::memory_order_relaxed);
    };
    boost::asio::co_spawn(c->executor(), c->run(), std::move(done));
  }
}

inline boost::asio::awaitable<void> server::reap_idle() {
  const auto idle = host_->settings.idle_timeout();
  const auto interval = std::clamp<config::duration>(idle / 4, std::chrono::milliseconds(10),
                                                     std::chrono::seconds(1));
  while (!host_->draining) {
    reaper_timer_.expires_after(interval);
    auto [ec] = co_await reaper_timer_.async_wait(detail::nothrow_awaitable);
    if (ec) {
      co_return;
    }
    host_->registry.unload_idle(idle);
  }
}

// Closes connections whose read or write deadline has passed. Connections
// only store their deadline; this one timer does the waiting for all of them.
inline boost::asio::awaitable<void> server::sweep_deadlines() {
  const auto& s = host_->settings;
  const auto shortest =
      std::min({s.header_timeout(), s.body_timeout(), s.keep_alive_timeout(), s.write_timeout()});
  const auto tick = std::clamp<config::duration>(shortest / 8, std::chrono::milliseconds(5),
                                                 std::chrono::milliseconds(250));
  for (;;) {
    sweeper_timer_.expires_after(tick);
    auto [ec] = co_await sweeper_timer_.async_wait(detail::nothrow_awaitable);
    if (ec) {
      co_return;
    }
    const auto now = detail::connection::clock::now().time_since_epoch().count();
    std::lock_guard lock(connections_mutex_);
    for (auto& [raw, weak] : connections_) {
      if (raw->deadline() <= now) {
        if (auto c = weak.lock()) {
          boost::asio::post(c->executor(), [c] { c->expire_if_due(); });
        }
      }
    }
  }
}

// Runs on the control strand.
inline void server::begin_drain() {
  if (stop_requested_.exchange(true)) {
    return;
  }
  host_->draining = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  signals_.cancel(ignored);
  reaper_timer_.cancel();
  {
    std::lock_guard lock(connections_mutex_);
    for (auto& [raw, weak] : connections_) {
      if (auto c = weak.lock()) {
        boost::asio::post(c->executor(), [c] { c->close_if_idle(); });
      }
    }
  }
  boost::asio::co_spawn(control_, drain(), detail::log_failure{host_->settings.logger()});
}

inline boost::asio::awaitable<void> server::drain() {
  using clock = std::chrono::steady_clock;
  auto& log = host_->log();
  const auto deadline = clock::now() + host_->settings.drain_timeout();
  boost::asio::steady_timer timer(control_);
  while (host_->metrics.connections_active.load() > 0 && clock::now() < deadline) {
    timer.expires_after(std::chrono::milliseconds(5));
    co_await timer.async_wait(detail::nothrow_awaitable);
  }
  if (const auto left = host_->metrics.connections_active.load(); left > 0) {
    log.warn("drain timeout: closing {} connection(s) still busy", left);
    std::lock_guard lock(connections_mutex_);
    for (auto& [raw, weak] : connections_) {
      if (auto c = weak.lock()) {
        boost::asio::post(c->executor(), [c] { c->close(); });
      }
    }
  }
  const bool unloaded =
      co_await host_->registry.unload_all(clock::now() + host_->settings.drain_timeout());
  if (!unloaded) {
    log.warn("drain: some functions did not unload in time");
  }
  log.info("drained; stopping");
  sweeper_timer_.cancel();
  io_.stop();
}

}  // namespace fezz
