#pragma once

// One client connection: HTTP/1.1 with keep-alive and pipelining, the limits
// and timeouts of the config, and a precise status for anything malformed.
//
// The request path is kept lean on purpose. Requests are parsed straight out
// of the connection's buffer (a socket read only when the parser needs more);
// responses are serialized into one output buffer, so the answers to a
// pipelined batch leave in a single write, in order; and a timeout is a
// deadline the server's sweeper compares against the clock, not a timer armed
// and cancelled around every read and write.

#include <fezz/detail/dispatch.hpp>
#include <fezz/detail/host_state.hpp>
#include <fezz/detail/http_date.hpp>
#include <fezz/detail/request_id.hpp>
#include <fezz/detail/routing.hpp>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <chrono>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace fezz::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;

inline constexpr auto nothrow_awaitable = asio::as_tuple(asio::use_awaitable);

class connection : public std::enable_shared_from_this<connection> {
 public:
  using clock = std::chrono::steady_clock;

  connection(host_state& host, asio::ip::tcp::socket socket)
      : host_(host), socket_(std::move(socket)) {}

  asio::awaitable<void> run();

  asio::any_io_executor executor() { return socket_.get_executor(); }

  // When the connection's current wait runs out (clock ticks); read by the
  // server's sweeper from another thread.
  clock::rep deadline() const noexcept { return deadline_.load(std::memory_order_relaxed); }

  // On the connection's executor. Sweeper: close if the deadline has really
  // passed. Drain: close if waiting between requests. Drain timeout: close.
  void expire_if_due() {
    if (clock::now().time_since_epoch().count() >= deadline()) {
      close();
    }
  }
  void close_if_idle() {
    if (idle_) {
      close();
    }
  }
  void close() {
    beast::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  using parser_type = http::request_parser<http::string_body>;
  struct rejection {
    http::status status;
    std::string message;
  };
  enum class read_result { complete, rejected, closed };

  void expire_after(clock::duration d) noexcept {
    deadline_.store((clock::now() + d).time_since_epoch().count(), std::memory_order_relaxed);
  }
  void never_expire() noexcept {
    deadline_.store(std::numeric_limits<clock::rep>::max(), std::memory_order_relaxed);
  }

  asio::awaitable<bool> fill();
  asio::awaitable<bool> flush();
  asio::awaitable<read_result> read_request(parser_type& parser);
  std::optional<rejection> classify(const beast::error_code& ec, const parser_type& parser) const;
  std::optional<rejection> check_header(const http::request_header<>& head,
                                        std::size_t header_bytes) const;
  void append(response::message_type& res, bool keep_alive, bool head);
  void append_rejection(const rejection& r, unsigned version);

  host_state& host_;
  asio::ip::tcp::socket socket_;
  beast::flat_buffer in_;
  std::string out_;  // serialized answers not yet written
  routing_cache routes_;
  std::string request_id_;  // of the request being answered; its storage is reused
  std::atomic<clock::rep> deadline_{std::numeric_limits<clock::rep>::max()};
  bool idle_ = true;
};

// Reads more bytes into the input buffer; false when the connection ended.
inline asio::awaitable<bool> connection::fill() {
  auto [ec, n] = co_await socket_.async_read_some(in_.prepare(16 * 1024), nothrow_awaitable);
  in_.commit(n);
  co_return !ec;
}

// Writes every answer waiting in the output buffer; false if the write failed.
inline asio::awaitable<bool> connection::flush() {
  if (out_.empty()) {
    co_return true;
  }
  expire_after(host_.settings.write_timeout());
  auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out_), nothrow_awaitable);
  (void)n;
  out_.clear();
  never_expire();
  co_return !ec;
}

// The status for a parse error, or nullopt when the connection just ends.
inline std::optional<connection::rejection> connection::classify(const beast::error_code& ec,
                                                                 const parser_type& parser) const {
  const auto& s = host_.settings;
  if (ec == http::error::header_limit) {
    // No target yet means the request line alone overran the limit: its target is too long.
    const auto target = parser.get().target();
    if (target.empty() || target.size() > s.max_target_bytes()) {
      return rejection{http::status::uri_too_long,
                       fmt::format("request target exceeds {} bytes", s.max_target_bytes())};
    }
    return rejection{http::status::request_header_fields_too_large,
                     fmt::format("header section exceeds {} bytes", s.max_header_bytes())};
  }
  if (ec == http::error::body_limit) {
    return rejection{http::status::payload_too_large,
                     fmt::format("body exceeds {} bytes", s.max_body_bytes())};
  }
  if (ec == http::error::bad_transfer_encoding) {
    return rejection{http::status::not_implemented, "unsupported Transfer-Encoding"};
  }
  if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
    return rejection{http::status::bad_request, "malformed request: " + ec.message()};
  }
  return std::nullopt;
}

// Parses one request out of the input buffer, reading only when the parser
// needs more. Rejections are appended to the output buffer.
inline asio::awaitable<connection::read_result> connection::read_request(parser_type& parser) {
  const config& s = host_.settings;
  parser.header_limit(static_cast<std::uint32_t>(
      std::min<std::size_t>(s.max_header_bytes(), std::numeric_limits<std::uint32_t>::max())));
  parser.body_limit(s.max_body_bytes());

  // Between requests the keep-alive timeout runs until a first byte arrives;
  // then the whole header section must arrive within the header timeout.
  idle_ = in_.size() == 0;
  if (idle_) {
    if (host_.draining.load(std::memory_order_relaxed)) {
      co_return read_result::closed;
    }
    expire_after(s.keep_alive_timeout());
    if (!co_await fill()) {
      co_return read_result::closed;
    }
    idle_ = false;
  }
  expire_after(s.header_timeout());
  std::size_t header_bytes = 0;  // Beast's own limit does not count what a first put consumed
  for (;;) {
    const bool header_was_done = parser.is_header_done();
    beast::error_code ec;
    const std::size_t used = in_.size() == 0 ? 0 : parser.put(in_.data(), ec);
    in_.consume(used);
    if (ec && ec != http::error::need_more) {
      if (auto r = classify(ec, parser)) {
        append_rejection(*r, 11);
        co_return read_result::rejected;
      }
      co_return read_result::closed;
    }
    if (!header_was_done) {
      header_bytes += used;  // not eager yet: a put stops where the header section ends
    }
    if (!header_was_done && parser.is_header_done()) {
      if (auto r = check_header(parser.get(), header_bytes)) {
        append_rejection(*r, parser.get().version());
        co_return read_result::rejected;
      }
      if (!parser.is_done() && parser.get()[http::field::expect].size() != 0) {
        out_ += parser.get().version() == 10 ? "HTTP/1.0 100 Continue\r\n\r\n"
                                             : "HTTP/1.1 100 Continue\r\n\r\n";
        if (!co_await flush()) {
          co_return read_result::closed;
        }
      }
      parser.eager(true);
      expire_after(s.body_timeout());
    }
    if (parser.is_done()) {
      break;
    }
    if (in_.size() == 0 || ec == http::error::need_more) {
      if (!co_await fill()) {
        co_return read_result::closed;  // ended or timed out mid-request: nothing to answer
      }
    }
  }
  never_expire();
  co_return read_result::complete;
}

// What is wrong with a complete header section, if anything.
inline std::optional<connection::rejection> connection::check_header(
    const http::request_header<>& head, std::size_t header_bytes) const {
  const config& s = host_.settings;
  if (head.target().size() > s.max_target_bytes()) {
    return rejection{http::status::uri_too_long,
                     fmt::format("request target exceeds {} bytes", s.max_target_bytes())};
  }
  if (header_bytes > s.max_header_bytes()) {
    return rejection{http::status::request_header_fields_too_large,
                     fmt::format("header section exceeds {} bytes", s.max_header_bytes())};
  }
  // Beast reads only chunked framing; any other coding is not ours to guess (RFC 9112 6.1).
  if (const auto coding = head[http::field::transfer_encoding];
      !coding.empty() && !beast::iequals(coding, "chunked")) {
    return rejection{http::status::not_implemented,
                     fmt::format("Transfer-Encoding '{}' is not supported", coding)};
  }
  if (const auto expect = head[http::field::expect];
      !expect.empty() && !beast::iequals(expect, "100-continue")) {
    return rejection{http::status::expectation_failed, "only 100-continue is supported"};
  }
  return std::nullopt;
}

inline void connection::append(response::message_type& res, bool keep_alive, bool head) {
  host_.metrics.count_response(res.result_int());
  res.set(http::field::server, "fezz");
  res.set(http::field::date, http_date());
  res.set("x-request-id", request_id_);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  if (head) {
    res.body().clear();  // Content-Length stays that of the GET answer
  }
  http::serializer<false, http::string_body> serializer(res);
  beast::error_code ec;
  do {
    serializer.next(ec, [&](beast::error_code&, const auto& buffers) {
      std::size_t n = 0;
      for (const auto b : beast::buffers_range_ref(buffers)) {
        out_.append(static_cast<const char*>(b.data()), b.size());
        n += b.size();
      }
      serializer.consume(n);
    });
  } while (!ec && !serializer.is_done());
}

inline void connection::append_rejection(const rejection& r, unsigned version) {
  host_.metrics.rejected_total.fetch_add(1, std::memory_order_relaxed);
  response answer = response::error(r.status, r.message);
  answer.message().version(version == 10 ? 10 : 11);
  make_request_id(request_id_);
  append(answer.message(), false, false);
}

inline asio::awaitable<void> connection::run() {
  for (;;) {
    parser_type parser;
    const auto result = co_await read_request(parser);
    if (result != read_result::complete) {
      if (result == read_result::rejected) {
        co_await flush();
      }
      break;
    }

    auto message = parser.release();
    const bool is_head = message.method() == http::verb::head;
    const unsigned version = message.version();
    bool keep_alive = message.keep_alive();
    if (const auto given = message["x-request-id"]; is_acceptable_request_id(given)) {
      request_id_.assign(given.data(), given.size());
    } else {
      make_request_id(request_id_);
    }
    host_.metrics.requests_total.fetch_add(1, std::memory_order_relaxed);

    response answer = co_await dispatch(host_, routes_, std::move(message), request_id_);
    auto& res = answer.message();
    res.version(version);
    keep_alive = keep_alive && !host_.draining.load(std::memory_order_relaxed);
    append(res, keep_alive, is_head);

    // A pipelined request already buffered is answered before writing, so a
    // batch leaves in one write; a large backlog of answers is written first.
    if (!keep_alive || in_.size() == 0 || out_.size() >= 64 * 1024) {
      if (!co_await flush() || !keep_alive) {
        break;
      }
    }
  }
  beast::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  socket_.close(ignored);
}

}  // namespace fezz::detail
