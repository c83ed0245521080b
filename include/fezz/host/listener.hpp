#pragma once

// The first stage of every request: the listening socket. It accepts
// connections within the config's limits, starts each one's coroutine, and
// keeps the set of live connections, whose deadlines it sweeps and which the
// drain closes.

#include <fezz/detail/async.hpp>
#include <fezz/detail/log_limiter.hpp>
#include <fezz/host/connection.hpp>
#include <fezz/host/host_state.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <sys/resource.h>

namespace fezz::host {

class listener {
 public:
  using executor_type = boost::asio::strand<boost::asio::io_context::executor_type>;

  // `control` runs the accept loop and the sweeper; connections get their own executors.
  listener(host_state& host, boost::asio::io_context& io, executor_type control)
      : host_(host),
        io_(io),
        acceptor_(control),
        sweeper_timer_(control),
        backoff_timer_(control) {}
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;

  // Binds and listens; returns the bound port. Throws boost::system::system_error.
  std::uint16_t open() {
    namespace ip = boost::asio::ip;
    const auto& s = host_.settings;
    connection_cap_ = connection_cap();
    const ip::tcp::endpoint endpoint(ip::make_address(s.host()), s.port());
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(ip::tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(s.backlog());
    return acceptor_.local_endpoint().port();
  }

  inline boost::asio::awaitable<void> accept_loop();
  inline boost::asio::awaitable<void> sweep_deadlines();

  // On the control executor.
  void stop_accepting() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    backoff_timer_.cancel();
  }
  void stop_sweeping() { sweeper_timer_.cancel(); }

  // Closes the connections waiting between requests; the others close after their answer.
  void close_idle() {
    for_each_connection([](connection& c) { c.close_if_idle(); });
  }
  void close_all() {
    for_each_connection([](connection& c) { c.close(); });
  }

 private:
  // Runs `action` on each live connection, on that connection's executor.
  template <class Action>
  void for_each_connection(Action action) {
    std::lock_guard lock(connections_mutex_);
    for (auto& [raw, weak] : connections_) {
      if (auto c = weak.lock()) {
        boost::asio::post(c->executor(), [c, action] { action(*c); });
      }
    }
  }

  // How many connections may be open at once: max_connections, or fewer when
  // the descriptor limit would be reached first (as HAProxy derives maxconn
  // from it). Raises the soft limit to the hard one first if the config says
  // so. Keeping descriptors in reserve means a flood of connections is
  // refused at once instead of exhausting the process, which then could not
  // open a file, a socket to the store, or a log.
  std::size_t connection_cap() const {
    const auto& s = host_.settings;
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
      return s.max_connections();
    }
    if (s.raise_descriptor_limit() && limit.rlim_cur < limit.rlim_max) {
      const rlimit raised{limit.rlim_max, limit.rlim_max};
      if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
        limit = raised;
      }
    }
    // Besides connections: the listener, epoll, timers, logs, the store's sockets.
    constexpr rlim_t reserve = 64;
    if (limit.rlim_cur == RLIM_INFINITY || s.max_connections() + reserve <= limit.rlim_cur) {
      return s.max_connections();
    }
    const std::size_t cap =
        limit.rlim_cur > 2 * reserve ? limit.rlim_cur - reserve : limit.rlim_cur / 2;
    s.logger()->warn(
        "max_connections is {} but only {} descriptors may be open: at most {} connections, "
        "more are refused",
        s.max_connections(), limit.rlim_cur, cap);
    return cap;
  }

  boost::asio::any_io_executor connection_executor() {
    // One thread needs no strand; several need one per connection.
    if (host_.settings.effective_threads() == 1) {
      return io_.get_executor();
    }
    return boost::asio::make_strand(io_);
  }

  host_state& host_;
  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer sweeper_timer_;
  boost::asio::steady_timer backoff_timer_;  // between accepts that failed
  detail::log_limiter accept_log_{1};        // one line a second about failed accepts
  std::size_t connection_cap_ = 0;           // open connections at most; set by open()
  std::mutex connections_mutex_;
  std::unordered_map<connection*, std::weak_ptr<connection>> connections_;
};

inline boost::asio::awaitable<void> listener::accept_loop() {
  using namespace std::chrono_literals;
  const auto& s = host_.settings;
  auto backoff = 10ms;
  for (;;) {
    auto executor = connection_executor();  // named: no temporaries inside co_await (g++ 12)
    auto [ec, socket] = co_await acceptor_.async_accept(executor, detail::nothrow_awaitable);
    if (ec) {
      if (ec == boost::asio::error::operation_aborted || !acceptor_.is_open()) {
        co_return;
      }
      // Out of descriptors (EMFILE) and the like: the listening socket stays
      // readable, so retrying at once would spin. Keep serving the connections
      // we have and try again after a pause that doubles while it lasts.
      accept_log_.log(*s.logger(), spdlog::level::warn, "accept failed: {}; retrying in {} ms",
                      ec.message(), backoff.count());
      backoff_timer_.expires_after(backoff);
      co_await backoff_timer_.async_wait(detail::nothrow_awaitable);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 1s);
      continue;
    }
    backoff = 10ms;
    auto& m = host_.metrics;
    if (m.connections_active.load(std::memory_order_relaxed) >= connection_cap_) {
      m.connections_refused.fetch_add(1, std::memory_order_relaxed);
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
    m.connections_total.fetch_add(1, std::memory_order_relaxed);
    m.connections_active.fetch_add(1, std::memory_order_relaxed);
    auto c = std::make_shared<connection>(host_, std::move(socket));
    {
      std::lock_guard lock(connections_mutex_);
      connections_.emplace(c.get(), c);
    }
    auto done = [this, c](const std::exception_ptr& e) {
      if (e) {
        detail::log_failure{host_.settings.logger()}(e);
      }
      {
        std::lock_guard lock(connections_mutex_);
        connections_.erase(c.get());
      }
      host_.metrics.connections_active.fetch_sub(1, std::memory_order_relaxed);
    };
    boost::asio::co_spawn(c->executor(), c->run(), std::move(done));
  }
}

// Closes connections whose read or write deadline has passed. Connections
// only store their deadline; this one timer does the waiting for all of them.
inline boost::asio::awaitable<void> listener::sweep_deadlines() {
  const auto& s = host_.settings;
  auto shortest =
      std::min({s.header_timeout(), s.body_timeout(), s.keep_alive_timeout(), s.write_timeout()});
  if (s.linger_timeout() > config::duration::zero()) {
    shortest = std::min(shortest, s.linger_timeout());
  }
  const auto tick = std::clamp<config::duration>(shortest / 8, std::chrono::milliseconds(5),
                                                 std::chrono::milliseconds(250));
  for (;;) {
    sweeper_timer_.expires_after(tick);
    auto [ec] = co_await sweeper_timer_.async_wait(detail::nothrow_awaitable);
    if (ec) {
      co_return;
    }
    const auto now = connection::clock::now().time_since_epoch().count();
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

}  // namespace fezz::host
