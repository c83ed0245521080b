// bench_floor: the smallest fast Boost.Beast HTTP/1.1 server we could write.
// It answers GET / with "Hello, World!" (text/plain) and anything else with
// 404, keeps connections alive and answers pipelined requests in order.
//
// It bounds what any Beast host can do on one thread, so it does only what an
// HTTP/1.1 origin server must: one io_context (concurrency hint 1) on the main
// thread, one callback chain per connection (no coroutine frames, no
// shared_ptr: the session owns itself and deletes itself at the end), one
// flat_buffer per connection reused across requests, a response built per
// request with Content-Length and a Date cached per second. No timeouts, no
// logging, no limits beyond Beast's defaults.
//
//   bench_floor [--host 127.0.0.1] [--port 8080]     (--port 0 picks a free one)

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <charconv>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <string>
#include <string_view>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr std::string_view hello_text = "Hello, World!";

// RFC 9110 requires Date from an origin server with a clock; formatting it once
// a second is what every fast server does.
class date_cache {
 public:
  std::string_view now() {
    const std::time_t t = std::time(nullptr);
    if (t != last_) {
      last_ = t;
      std::tm tm{};
      gmtime_r(&t, &tm);
      text_size_ = std::strftime(text_, sizeof text_, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    }
    return {text_, text_size_};
  }

 private:
  std::time_t last_ = 0;
  char text_[64] = {};
  std::size_t text_size_ = 0;
};

date_cache dates;  // one thread: no synchronization

class session {
 public:
  explicit session(tcp::socket socket) : socket_(std::move(socket)) {}

  void start() { read(); }

 private:
  void read() {
    request_ = {};
    http::async_read(socket_, buffer_, request_,
                     [this](beast::error_code ec, std::size_t) { on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      return close();
    }
    const bool found = request_.method() == http::verb::get && request_.target() == "/";
    response_ = {found ? http::status::ok : http::status::not_found, request_.version()};
    response_.set(http::field::date, dates.now());
    response_.set(http::field::content_type, "text/plain");
    response_.body() = found ? hello_text : std::string_view("Not Found");
    response_.content_length(response_.body().size());
    response_.keep_alive(request_.keep_alive());
    http::async_write(socket_, response_,
                      [this](beast::error_code write_ec, std::size_t) { on_write(write_ec); });
  }

  void on_write(beast::error_code ec) {
    if (ec || !response_.keep_alive()) {
      return close();
    }
    read();
  }

  void close() {
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    socket_.close(ignored);
    delete this;
  }

  tcp::socket socket_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

class listener {
 public:
  listener(asio::io_context& io, const tcp::endpoint& endpoint) : acceptor_(io) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  void accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        (new session(std::move(socket)))->start();
      }
      if (acceptor_.is_open()) {
        accept();
      }
    });
  }

 private:
  tcp::acceptor acceptor_;
};

[[noreturn]] void usage_error(std::string_view message) {
  std::cerr << "bench_floor: " << message
            << "\nusage: bench_floor [--host ADDRESS] [--port PORT]\n";
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  unsigned port = 8080;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc) {
      usage_error("missing value or unknown argument");
    }
    const std::string_view value = argv[++i];
    if (arg == "--host") {
      host = value;
    } else if (arg == "--port") {
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), port);
      if (ec != std::errc{} || end != value.data() + value.size() || port > 65535) {
        usage_error("--port needs a number from 0 to 65535");
      }
    } else {
      usage_error("unknown argument");
    }
  }

  asio::io_context io{1};
  listener l(io, tcp::endpoint(asio::ip::make_address(host), static_cast<std::uint16_t>(port)));
  l.accept();
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code, int) { io.stop(); });
  std::cout << "listening on http://" << host << ":" << l.port() << std::endl;
  io.run();
  return 0;
}
