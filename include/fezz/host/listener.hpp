#pragma once

// The first stage of every request: the listening socket. It accepts
// connections within the config's limits, starts each one's coroutine, and
// keeps the set of live connections, whose deadlines it sweeps and which the
// drain closes.

#include <fezz/detail/async.hpp>
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

namespace fezz::host {

class listener {
 public:
  using executor_type = boost::asio::strand<boost::asio::io_context::executor_type>;

  // `control` runs the accept loop and the sweeper; connections get their own executors.
  listener(host_state& host, boost::asio::io_context& io, executor_type control)
      : host_(host), io_(io), acceptor_(control), sweeper_timer_(control) {}
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;

  // Binds and listens; returns the bound port. Throws boost::system::system_error.
  std::uint16_t open() {
    namespace ip = boost::asio::ip;
    const auto& s = host_.settings;
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
  std::mutex connections_mutex_;
  std::unordered_map<connection*, std::weak_ptr<connection>> connections_;
};

inline boost::asio::awaitable<void> listener::accept_loop() {
  const auto& s = host_.settings;
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
    auto& m = host_.metrics;
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
