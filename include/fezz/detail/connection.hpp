#pragma once

// One client connection: HTTP/1.1 with keep-alive and pipelining (requests are
// read from one buffer and answered in order), the limits and timeouts of the
// config, and a precise status for anything malformed.

#include <fezz/detail/dispatch.hpp>
#include <fezz/detail/host_state.hpp>
#include <fezz/detail/http_date.hpp>
#include <fezz/detail/request_id.hpp>
#include <fezz/detail/routing.hpp>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/version.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace fezz::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;

inline constexpr auto nothrow_awaitable = asio::as_tuple(asio::use_awaitable);

class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(host_state& host, asio::ip::tcp::socket socket)
      : host_(host), stream_(std::move(socket)) {}

  asio::awaitable<void> run();

  // Drain: a connection waiting for its next request is closed now; one in
  // the middle of a request closes after answering it.
  void close_if_idle() {
    if (idle_) {
      beast::error_code ignored;
      stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      stream_.cancel();
    }
  }
  // Drain timeout: whatever it is doing, the connection ends.
  void close() {
    stream_.cancel();
    stream_.close();
  }
  asio::any_io_executor executor() { return stream_.get_executor(); }

 private:
  struct rejection {
    http::status status;
    std::string message;
  };
  using parser_type = http::request_parser<http::string_body>;
  std::optional<rejection> classify(const beast::error_code& ec, const parser_type& parser) const;
  asio::awaitable<void> reject(const rejection& r, unsigned version);
  void finish(response::message_type& res, std::string_view request_id, bool keep_alive,
              bool head) const;

  host_state& host_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  routing_cache routes_;
  std::string request_id_;  // of the request being answered; its storage is reused
  bool idle_ = true;
};

// The status for a read error, or nullopt when the connection just ends: the
// client closed it, or a timeout did (Beast's stream closes the socket then,
// which is what cuts a trickling client off).
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
  if (ec.category() == beast::http::make_error_code(http::error::bad_method).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message) {
    return rejection{http::status::bad_request, "malformed request: " + ec.message()};
  }
  return std::nullopt;
}

inline asio::awaitable<void> connection::reject(const rejection& r, unsigned version) {
  host_.metrics.rejected_total.fetch_add(1, std::memory_order_relaxed);
  response answer = response::error(r.status, r.message);
  auto& res = answer.message();
  res.version(version == 10 ? 10 : 11);
  make_request_id(request_id_);
  finish(res, request_id_, false, false);
  stream_.expires_after(host_.settings.write_timeout());
  co_await http::async_write(stream_, res, nothrow_awaitable);
}

inline void connection::finish(response::message_type& res, std::string_view request_id,
                               bool keep_alive, bool head) const {
  host_.metrics.count_response(res.result_int());
  res.set(http::field::server, "fezz");
  res.set(http::field::date, http_date());
  res.set("x-request-id", request_id);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  if (head) {
    res.body().clear();  // Content-Length stays that of the GET answer
  }
}

inline asio::awaitable<void> connection::run() {
  const config& s = host_.settings;
  for (;;) {
    // Between requests: the keep-alive timeout applies until a first byte arrives.
    if (buffer_.size() == 0) {
      idle_ = true;
      if (host_.draining.load(std::memory_order_relaxed)) {
        break;
      }
      stream_.expires_after(s.keep_alive_timeout());
      auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(4096), nothrow_awaitable);
      if (ec) {
        break;
      }
      buffer_.commit(n);
    }
    idle_ = false;

    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(s.max_header_bytes(), std::numeric_limits<std::uint32_t>::max())));
    parser.body_limit(s.max_body_bytes());
    stream_.expires_after(s.header_timeout());
    auto [header_ec, header_bytes] =
        co_await http::async_read_header(stream_, buffer_, parser, nothrow_awaitable);
    if (header_ec) {
      if (auto r = classify(header_ec, parser)) {
        co_await reject(*r, 11);
      }
      break;
    }
    // Temporaries are kept out of co_await expressions: g++ 12 destroys some twice.
    const auto& head = parser.get();
    if (head.target().size() > s.max_target_bytes()) {
      const rejection r{http::status::uri_too_long,
                        fmt::format("request target exceeds {} bytes", s.max_target_bytes())};
      co_await reject(r, head.version());
      break;
    }
    // Beast's header limit counts only bytes beyond those already buffered: check the total.
    if (header_bytes > s.max_header_bytes()) {
      const rejection r{http::status::request_header_fields_too_large,
                        fmt::format("header section exceeds {} bytes", s.max_header_bytes())};
      co_await reject(r, head.version());
      break;
    }
    // Beast reads only chunked framing; any other coding is not ours to guess (RFC 9112 6.1).
    if (const auto coding = head[http::field::transfer_encoding];
        !coding.empty() && !beast::iequals(coding, "chunked")) {
      const rejection r{http::status::not_implemented,
                        fmt::format("Transfer-Encoding '{}' is not supported", coding)};
      co_await reject(r, head.version());
      break;
    }
    if (!parser.is_done()) {
      const auto expect = head[http::field::expect];
      if (!expect.empty()) {
        if (!beast::iequals(expect, "100-continue")) {
          const rejection r{http::status::expectation_failed, "only 100-continue is supported"};
          co_await reject(r, head.version());
          break;
        }
        http::response<http::empty_body> go_on{http::status::continue_, head.version()};
        stream_.expires_after(s.write_timeout());
        auto [ec, n] = co_await http::async_write(stream_, go_on, nothrow_awaitable);
        if (ec) {
          break;
        }
      }
      stream_.expires_after(s.body_timeout());
      auto [body_ec, body_bytes] =
          co_await http::async_read(stream_, buffer_, parser, nothrow_awaitable);
      (void)body_bytes;
      if (body_ec) {
        if (auto r = classify(body_ec, parser)) {
          co_await reject(*r, head.version());
        }
        break;
      }
    }
    stream_.expires_never();

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
    finish(res, request_id_, keep_alive, is_head);
    stream_.expires_after(s.write_timeout());
    auto [write_ec, written] = co_await http::async_write(stream_, res, nothrow_awaitable);
    (void)written;
    if (write_ec || !keep_alive) {
      break;
    }
  }
  beast::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  stream_.close();
}

}  // namespace fezz::detail
