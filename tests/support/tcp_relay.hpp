#pragma once

// Test support: a TCP relay on 127.0.0.1 between a client and a server, whose link a test
// can cut (every relayed connection closed, new ones refused) and restore.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace fezz::test {

class tcp_relay {
 public:
  explicit tcp_relay(int target_port)
      : target_(boost::asio::ip::make_address("127.0.0.1"),
                static_cast<unsigned short>(target_port)),
        acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    boost::asio::co_spawn(io_, accept_loop(), boost::asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  tcp_relay(const tcp_relay&) = delete;
  tcp_relay& operator=(const tcp_relay&) = delete;
  ~tcp_relay() {
    boost::asio::post(io_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      close_all();
    });
    io_.stop();
    thread_.join();
  }

  int port() const noexcept { return port_; }

  // Closes every relayed connection and refuses new ones until restore(). Returns once done.
  void cut() {
    cut_ = true;
    std::promise<void> done;
    boost::asio::post(io_, [&] {
      close_all();
      done.set_value();
    });
    done.get_future().wait();
  }

  void restore() { cut_ = false; }

  std::size_t connections_made() const { return made_.load(); }

 private:
  using tcp = boost::asio::ip::tcp;
  static constexpr auto nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);

  struct link {
    tcp::socket client;
    tcp::socket server;
    explicit link(boost::asio::io_context& io) : client(io), server(io) {}
    void close() {
      boost::system::error_code ignored;
      client.close(ignored);
      server.close(ignored);
    }
  };

  void close_all() {
    for (auto& weak : links_) {
      if (auto alive = weak.lock()) {
        alive->close();
      }
    }
    links_.clear();
  }

  boost::asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [error, socket] = co_await acceptor_.async_accept(nothrow);
      if (error == boost::asio::error::operation_aborted || !acceptor_.is_open()) {
        co_return;
      }
      if (error) {
        continue;
      }
      if (cut_) {
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      auto pair = std::make_shared<link>(io_);
      pair->client = std::move(socket);
      boost::system::error_code connect_error;
      pair->server.connect(target_, connect_error);
      if (connect_error) {
        pair->close();
        continue;
      }
      ++made_;
      links_.push_back(pair);
      boost::asio::co_spawn(io_, pump(pair, true), boost::asio::detached);
      boost::asio::co_spawn(io_, pump(pair, false), boost::asio::detached);
    }
  }

  boost::asio::awaitable<void> pump(std::shared_ptr<link> pair, bool upstream) {
    auto& from = upstream ? pair->client : pair->server;
    auto& to = upstream ? pair->server : pair->client;
    std::array<char, 16384> buffer{};
    for (;;) {
      auto [read_error, n] = co_await from.async_read_some(boost::asio::buffer(buffer), nothrow);
      if (read_error) {
        break;
      }
      auto [write_error, written] =
          co_await boost::asio::async_write(to, boost::asio::buffer(buffer.data(), n), nothrow);
      (void)written;
      if (write_error) {
        break;
      }
    }
    pair->close();
  }

  boost::asio::io_context io_;
  tcp::endpoint target_;
  tcp::acceptor acceptor_;
  int port_ = 0;
  std::atomic<bool> cut_{false};
  std::atomic<std::size_t> made_{0};
  std::vector<std::weak_ptr<link>> links_;  // touched only on io_'s thread
  std::thread thread_;
};

}  // namespace fezz::test
