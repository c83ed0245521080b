#pragma once

// watch_stream: one etcd watch, a POST /v3/watch whose chunked response streams NDJSON
// messages, read message by message with an idle timeout. gateway_client::open_watch
// makes one.

#include <fezz/etcd/connection.hpp>
#include <fezz/etcd/gateway_responses.hpp>
#include <fezz/etcd/line_splitter.hpp>

#include <ostream>  // before Beast: Boost 1.81's http/status.hpp needs it

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace fezz::etcd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

// One watch: a POST /v3/watch whose chunked response streams NDJSON messages.
class watch_stream {
 public:
  watch_stream(std::unique_ptr<detail::connection> connection,
               std::unique_ptr<http::response_parser<http::string_body>> parser, std::string where,
               std::size_t max_message)
      : endpoint_index_(connection->endpoint_index),
        connection_(std::move(connection)),
        parser_(std::move(parser)),
        splitter_(max_message),
        endpoint_(std::move(where)) {
    parser_->on_chunk_body(chunk_callback_);
  }
  watch_stream(const watch_stream&) = delete;
  watch_stream& operator=(const watch_stream&) = delete;

  // The next message; nullopt when the stream ended cleanly; an error (code unavailable)
  // when the connection failed or nothing arrived for `idle_timeout`.
  asio::awaitable<gateway_result<std::optional<std::string>>> next(
      std::chrono::steady_clock::duration idle_timeout) {
    using result = gateway_result<std::optional<std::string>>;
    for (;;) {
      if (auto line = splitter_.next()) {
        co_return result(std::optional<std::string>(std::string(*line)));
      }
      if (splitter_.overflowed()) {
        co_return result(
            malformed("a watch message over " + std::to_string(splitter_.max_line()) + " bytes"));
      }
      if (parser_->is_done()) {
        if (!parser_->chunked() && !body_fed_) {  // a body sent with a length
          body_fed_ = true;
          splitter_.feed(parser_->get().body());
          continue;
        }
        if (auto last = splitter_.finish()) {
          co_return result(std::optional<std::string>(std::string(*last)));
        }
        co_return result(std::optional<std::string>());
      }
      connection_->tcp().expires_after(idle_timeout);
      const auto error = co_await connection_->read_some(*parser_);
      if (error && !(error == http::error::body_limit && splitter_.overflowed())) {
        const bool idle = error == beast::error::timeout;
        co_return result(
            gateway_error{grpc_code::unavailable, "watch stream from " + endpoint_ +
                                                      (idle ? " was idle too long" : " broke") +
                                                      ": " + error.message()});
      }
    }
  }

  void close() { connection_->close(); }
  const std::string& endpoint() const noexcept { return endpoint_; }
  std::size_t endpoint_index() const noexcept { return endpoint_index_; }

 private:
  std::size_t endpoint_index_;
  std::unique_ptr<detail::connection> connection_;
  std::unique_ptr<http::response_parser<http::string_body>> parser_;
  line_splitter splitter_;
  std::string endpoint_;
  bool body_fed_ = false;
  std::function<std::size_t(std::uint64_t, std::string_view, beast::error_code&)> chunk_callback_ =
      [this](std::uint64_t, std::string_view data, beast::error_code& error) {
        if (!splitter_.feed(data)) {
          error = http::error::body_limit;
        }
        return data.size();
      };
};

}  // namespace fezz::etcd
