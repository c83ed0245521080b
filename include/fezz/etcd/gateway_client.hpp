#pragma once

// gateway_client: etcd v3's HTTP/JSON gateway over Boost.Beast, for coroutines on one
// io_context (etcd_store's). Unary calls share a few keep-alive connections; each watch
// gets a streaming connection of its own. Every operation has a timeout. The client fails
// over to the next endpoint when one cannot be reached or answers that it is unavailable,
// speaks TLS with a CA and an optional client certificate, and logs in with etcd's
// user/password, logging in again when etcd says the token is no longer valid.

#include <fezz/etcd/gateway_messages.hpp>

#include <ostream>  // before Beast: Boost 1.81's http/status.hpp needs it

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fezz::etcd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

struct client_options {
  // "host:port", "http://host:port" or "https://host:port"; https (or a CA file) means TLS.
  std::vector<std::string> endpoints;
  std::string ca_file;    // PEM; empty: the system's trusted CAs
  std::string cert_file;  // PEM client certificate, optional
  std::string key_file;   // its key
  std::string user;       // etcd user; empty: no authentication
  std::string password;
  std::chrono::milliseconds connect_timeout{3000};  // TCP connect + TLS handshake
  std::chrono::milliseconds request_timeout{5000};  // one unary call on one endpoint
  std::shared_ptr<spdlog::logger> logger;           // null: spdlog's default logger
};

struct endpoint {
  std::string host;
  std::string port;
  bool tls = false;

  std::string to_string() const {
    const bool ipv6 = host.find(':') != std::string::npos;
    return std::string(tls ? "https://" : "http://") + (ipv6 ? "[" + host + "]" : host) + ":" +
           port;
  }
};

// Parses "host:port", "http://host:port", "https://host:port" or "[::1]:port"; throws
// std::invalid_argument with the reason.
inline endpoint parse_endpoint(std::string_view text, bool tls_by_default) {
  endpoint result;
  result.tls = tls_by_default;
  if (text.starts_with("https://")) {
    result.tls = true;
    text.remove_prefix(8);
  } else if (text.starts_with("http://")) {
    result.tls = false;  // explicit, whatever the default
    text.remove_prefix(7);
  }
  while (!text.empty() && text.back() == '/') {
    text.remove_suffix(1);
  }
  std::size_t colon = std::string_view::npos;
  if (text.starts_with("[")) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      throw std::invalid_argument("etcd endpoint '" + std::string(text) +
                                  "': expected [address]:port");
    }
    result.host = std::string(text.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      throw std::invalid_argument("etcd endpoint '" + std::string(text) + "': expected host:port");
    }
    result.host = std::string(text.substr(0, colon));
  }
  result.port = std::string(text.substr(colon + 1));
  if (result.host.empty() || result.port.empty() ||
      result.port.find_first_not_of("0123456789") != std::string::npos) {
    throw std::invalid_argument("etcd endpoint '" + std::string(text) + "': expected host:port");
  }
  return result;
}

namespace detail {

inline constexpr auto nothrow_awaitable = asio::as_tuple(asio::use_awaitable);

// One connection to one endpoint, plain or TLS.
class connection {
 public:
  using plain_stream = beast::tcp_stream;
  using tls_stream = beast::ssl_stream<beast::tcp_stream>;

  connection(asio::any_io_executor executor, asio::ssl::context* tls, std::size_t endpoint_index)
      : endpoint_index(endpoint_index) {
    if (tls != nullptr) {
      secure_ = std::make_unique<tls_stream>(executor, *tls);
    } else {
      plain_ = std::make_unique<plain_stream>(executor);
    }
  }

  beast::tcp_stream& tcp() { return secure_ ? beast::get_lowest_layer(*secure_) : *plain_; }

  asio::awaitable<beast::error_code> connect(const endpoint& where,
                                             std::chrono::milliseconds timeout) {
    asio::ip::tcp::resolver resolver(tcp().get_executor());
    auto [resolve_error, results] =
        co_await resolver.async_resolve(where.host, where.port, nothrow_awaitable);
    if (resolve_error) {
      co_return resolve_error;
    }
    tcp().expires_after(timeout);
    auto [connect_error, connected] = co_await tcp().async_connect(results, nothrow_awaitable);
    (void)connected;
    if (connect_error) {
      co_return connect_error;
    }
    auto& socket = tcp().socket();
    beast::error_code ignored;
    socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    socket.set_option(asio::socket_base::keep_alive(true), ignored);
    if (secure_) {
      beast::error_code not_an_address;
      asio::ip::make_address(where.host, not_an_address);
      if (not_an_address) {  // SNI only for names, as RFC 6066 says
        SSL_set_tlsext_host_name(secure_->native_handle(), where.host.c_str());
      }
      secure_->set_verify_mode(asio::ssl::verify_peer);
      secure_->set_verify_callback(asio::ssl::host_name_verification(where.host));
      auto [handshake_error] =
          co_await secure_->async_handshake(asio::ssl::stream_base::client, nothrow_awaitable);
      if (handshake_error) {
        co_return handshake_error;
      }
    }
    tcp().expires_never();
    co_return beast::error_code{};
  }

  template <class Request>
  asio::awaitable<beast::error_code> write(Request& request) {
    if (secure_) {
      auto [error, n] = co_await http::async_write(*secure_, request, nothrow_awaitable);
      (void)n;
      co_return error;
    }
    auto [error, n] = co_await http::async_write(*plain_, request, nothrow_awaitable);
    (void)n;
    co_return error;
  }

  template <class Parser>
  asio::awaitable<beast::error_code> read_header(Parser& parser) {
    if (secure_) {
      auto [error, n] =
          co_await http::async_read_header(*secure_, buffer, parser, nothrow_awaitable);
      (void)n;
      co_return error;
    }
    auto [error, n] = co_await http::async_read_header(*plain_, buffer, parser, nothrow_awaitable);
    (void)n;
    co_return error;
  }

  template <class Parser>
  asio::awaitable<beast::error_code> read_some(Parser& parser) {
    if (secure_) {
      auto [error, n] = co_await http::async_read_some(*secure_, buffer, parser, nothrow_awaitable);
      (void)n;
      co_return error;
    }
    auto [error, n] = co_await http::async_read_some(*plain_, buffer, parser, nothrow_awaitable);
    (void)n;
    co_return error;
  }

  template <class Parser>
  asio::awaitable<beast::error_code> read(Parser& parser) {
    if (secure_) {
      auto [error, n] = co_await http::async_read(*secure_, buffer, parser, nothrow_awaitable);
      (void)n;
      co_return error;
    }
    auto [error, n] = co_await http::async_read(*plain_, buffer, parser, nothrow_awaitable);
    (void)n;
    co_return error;
  }

  // Ends the connection at once; pending operations complete with an error.
  void close() {
    beast::error_code ignored;
    tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    tcp().close();
  }

  const std::size_t endpoint_index;
  beast::flat_buffer buffer;
  bool reused = false;  // served a request before

 private:
  std::unique_ptr<plain_stream> plain_;
  std::unique_ptr<tls_stream> secure_;
};

inline bool is_token_problem(const gateway_error& error) {
  return error.code == grpc_code::unauthenticated ||
         error.message.find("invalid auth token") != std::string::npos ||
         error.message.find("user name is empty") != std::string::npos;
}

}  // namespace detail

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

class gateway_client {
 public:
  // The largest unary response read (a page of a range), and the largest watch message.
  static constexpr std::size_t max_response_bytes = 128 * 1024 * 1024;
  static constexpr std::size_t max_watch_message = line_splitter::default_max_line;

  // Throws std::invalid_argument for a bad endpoint and std::runtime_error when a TLS file
  // cannot be loaded.
  gateway_client(asio::any_io_executor executor, client_options options)
      : executor_(std::move(executor)), options_(std::move(options)) {
    if (!options_.logger) {
      options_.logger = spdlog::default_logger();
    }
    if (options_.endpoints.empty()) {
      throw std::invalid_argument("etcd: no endpoint given");
    }
    const bool tls_by_default = !options_.ca_file.empty();
    for (const auto& text : options_.endpoints) {
      endpoints_.push_back(parse_endpoint(text, tls_by_default));
    }
    for (const auto& e : endpoints_) {
      if (e.tls != endpoints_.front().tls) {
        throw std::invalid_argument("etcd: endpoints mix http and https");
      }
    }
    if (endpoints_.front().tls) {
      tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
      tls_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3);
      load_tls_files();
    }
  }

  const std::vector<endpoint>& endpoints() const noexcept { return endpoints_; }
  std::string current_endpoint() const { return endpoints_[current_].to_string(); }
  const client_options& options() const noexcept { return options_; }

  // POSTs `body` to `path` and returns the 200 response's body, or why not. Tries every
  // endpoint once, starting with the one that worked last.
  asio::awaitable<gateway_result<std::string>> call(std::string_view path, std::string body) {
    gateway_error last{grpc_code::unavailable, "no endpoint tried"};
    bool logged_in_again = false;
    for (std::size_t attempt = 0; attempt < endpoints_.size(); ++attempt) {
      const std::size_t index = current_;
      if (!options_.user.empty() && token_.empty()) {
        if (auto error = co_await authenticate(index)) {
          last = *error;
          if (error->code != grpc_code::unavailable) {
            co_return last;  // wrong password and the like: another endpoint says the same
          }
          advance(index);
          continue;
        }
      }
      auto answer = co_await exchange(index, path, body, token_);
      if (!failed(answer)) {
        co_return answer;
      }
      last = std::get<1>(answer);
      if (!options_.user.empty() && detail::is_token_problem(last) && !logged_in_again) {
        logged_in_again = true;  // the token expired: log in again and retry here, once
        options_.logger->info("etcd: token refused by {} ({}); logging in again",
                              endpoints_[index].to_string(), last.message);
        token_.clear();
        --attempt;
        continue;
      }
      if (last.code != grpc_code::unavailable) {
        co_return last;
      }
      advance(index);
    }
    co_return last;
  }

  // Opens a watch stream with `create_request` as its request, requiring a leader.
  asio::awaitable<gateway_result<std::unique_ptr<watch_stream>>> open_watch(
      std::string create_request) {
    using result = gateway_result<std::unique_ptr<watch_stream>>;
    gateway_error last{grpc_code::unavailable, "no endpoint tried"};
    for (std::size_t attempt = 0; attempt < endpoints_.size(); ++attempt) {
      const std::size_t index = current_;
      if (!options_.user.empty() && token_.empty()) {
        if (auto error = co_await authenticate(index)) {
          last = *error;
          if (error->code != grpc_code::unavailable) {
            co_return result(last);
          }
          advance(index);
          continue;
        }
      }
      auto connection = co_await connect(index, last);
      if (!connection) {
        advance(index);
        continue;
      }
      auto request = make_request(index, paths::watch, create_request, token_);
      // etcd's WithRequireLeader: a member that loses its leader ends the stream instead of
      // leaving it silent.
      request.set("Grpc-Metadata-Hasleader", "true");
      connection->tcp().expires_after(options_.request_timeout);
      auto parser = std::make_unique<http::response_parser<http::string_body>>();
      parser->body_limit(boost::none);  // a watch never ends; its messages are bounded instead
      beast::error_code error = co_await connection->write(request);
      if (!error) {
        error = co_await connection->read_header(*parser);
      }
      if (error) {
        last = io_error(index, error);
        advance(index);
        continue;
      }
      if (parser->get().result() != http::status::ok) {
        parser->body_limit(64 * 1024);
        std::string body;
        auto collect = [&body](std::uint64_t, std::string_view data, beast::error_code&) {
          body.append(data);
          return data.size();
        };
        parser->on_chunk_body(collect);
        error = co_await connection->read(*parser);
        if (!parser->chunked()) {
          body = parser->get().body();
        }
        last = status_error(index, parser->get().result_int(), body);
        if (detail::is_token_problem(last)) {
          token_.clear();
        }
        if (last.code != grpc_code::unavailable) {
          co_return result(last);
        }
        advance(index);
        continue;
      }
      connection->tcp().expires_never();
      co_return result(std::make_unique<watch_stream>(std::move(connection), std::move(parser),
                                                      endpoints_[index].to_string(),
                                                      max_watch_message));
    }
    co_return result(last);
  }

  // Forgets the token, so the next call logs in first (after etcd refused it in a stream).
  void forget_token() { token_.clear(); }

  // Moves on to the endpoint after `index`, unless another failure already moved on.
  void advance(std::size_t index) {
    if (current_ == index) {
      current_ = (index + 1) % endpoints_.size();
    }
    drop_idle(index);
  }

  // Closes the idle keep-alive connections.
  void close() { idle_.clear(); }

 private:
  void load_tls_files() {
    beast::error_code error;
    if (!options_.ca_file.empty()) {
      tls_->load_verify_file(options_.ca_file, error);
      if (error) {
        throw std::runtime_error("etcd: cannot load the CA file " + options_.ca_file + ": " +
                                 error.message());
      }
    } else {
      tls_->set_default_verify_paths(error);
    }
    if (!options_.cert_file.empty()) {
      tls_->use_certificate_chain_file(options_.cert_file, error);
      if (error) {
        throw std::runtime_error("etcd: cannot load the certificate " + options_.cert_file + ": " +
                                 error.message());
      }
      tls_->use_private_key_file(options_.key_file.empty() ? options_.cert_file : options_.key_file,
                                 asio::ssl::context::pem, error);
      if (error) {
        throw std::runtime_error("etcd: cannot load the key " + options_.key_file + ": " +
                                 error.message());
      }
    }
  }

  http::request<http::string_body> make_request(std::size_t index, std::string_view path,
                                                std::string body, const std::string& token) const {
    http::request<http::string_body> request{http::verb::post, path, 11};
    const auto& where = endpoints_[index];
    request.set(http::field::host, where.host + ":" + where.port);
    request.set(http::field::content_type, "application/json");
    if (!token.empty()) {
      request.set(http::field::authorization, token);
    }
    request.keep_alive(true);
    request.body() = std::move(body);
    request.prepare_payload();
    return request;
  }

  gateway_error io_error(std::size_t index, const beast::error_code& error) const {
    return {grpc_code::unavailable,
            "etcd at " + endpoints_[index].to_string() + " cannot be reached: " + error.message()};
  }

  // A non-200 answer: etcd's error if the body holds one; 5xx without one is unavailable.
  gateway_error status_error(std::size_t index, unsigned status, std::string_view body) const {
    auto parsed = parse_empty_response(body);
    if (failed(parsed) && !std::get<1>(parsed).malformed) {
      auto error = std::get<1>(parsed);
      if (status == 503) {
        error.code = grpc_code::unavailable;
      }
      return error;
    }
    std::string excerpt(body.substr(0, 200));
    for (auto& c : excerpt) {
      if (c == '\n' || c == '\r') {
        c = ' ';
      }
    }
    return {status >= 500 ? grpc_code::unavailable : 0,
            "etcd at " + endpoints_[index].to_string() + " answered HTTP " +
                std::to_string(status) + (excerpt.empty() ? "" : ": " + excerpt)};
  }

  asio::awaitable<std::unique_ptr<detail::connection>> connect(std::size_t index,
                                                               gateway_error& failure) {
    auto connection = std::make_unique<detail::connection>(executor_, tls_.get(), index);
    const auto error = co_await connection->connect(endpoints_[index], options_.connect_timeout);
    if (error) {
      failure = io_error(index, error);
      co_return nullptr;
    }
    co_return connection;
  }

  // One request on one endpoint, on an idle keep-alive connection if there is one. A
  // reused connection that fails before any answer (the server closed it while idle) is
  // replaced by a fresh one, once.
  asio::awaitable<gateway_result<std::string>> exchange(std::size_t index, std::string_view path,
                                                        const std::string& body,
                                                        const std::string& token) {
    using result = gateway_result<std::string>;
    gateway_error failure;
    for (int round = 0; round < 2; ++round) {
      std::unique_ptr<detail::connection> connection = take_idle(index);
      if (!connection) {
        connection = co_await connect(index, failure);
        if (!connection) {
          co_return result(failure);
        }
      }
      auto request = make_request(index, path, body, token);
      connection->tcp().expires_after(options_.request_timeout);
      http::response_parser<http::string_body> parser;
      parser.body_limit(max_response_bytes);
      beast::error_code error = co_await connection->write(request);
      if (!error) {
        error = co_await connection->read(parser);
      }
      if (error) {
        const bool stale =
            connection->reused && !parser.got_some() && error != beast::error::timeout;
        if (stale && round == 0) {
          continue;
        }
        co_return result(io_error(index, error));
      }
      auto& response = parser.get();
      const bool keep = response.keep_alive();
      const auto status = response.result_int();
      std::string answer = std::move(response.body());
      if (keep) {
        connection->reused = true;
        connection->tcp().expires_never();
        give_back(std::move(connection));
      }
      if (status != 200) {
        co_return result(status_error(index, status, answer));
      }
      co_return result(std::move(answer));
    }
    co_return result(failure);
  }

  // Logs in on endpoint `index`; nullopt when it worked.
  asio::awaitable<std::optional<gateway_error>> authenticate(std::size_t index) {
    auto answer = co_await exchange(index, paths::authenticate,
                                    authenticate_request(options_.user, options_.password), {});
    if (failed(answer)) {
      co_return std::get<1>(answer);
    }
    auto parsed = parse_auth_response(std::get<0>(answer));
    if (failed(parsed)) {
      co_return std::get<1>(parsed);
    }
    token_ = std::get<0>(parsed).token;
    co_return std::nullopt;
  }

  std::unique_ptr<detail::connection> take_idle(std::size_t index) {
    for (auto it = idle_.begin(); it != idle_.end(); ++it) {
      if ((*it)->endpoint_index == index) {
        auto connection = std::move(*it);
        idle_.erase(it);
        return connection;
      }
    }
    return nullptr;
  }

  void give_back(std::unique_ptr<detail::connection> connection) {
    constexpr std::size_t max_idle = 4;
    if (idle_.size() < max_idle) {
      idle_.push_back(std::move(connection));
    }
  }

  void drop_idle(std::size_t index) {
    std::erase_if(idle_, [index](const auto& c) { return c->endpoint_index == index; });
  }

  asio::any_io_executor executor_;
  client_options options_;
  std::vector<endpoint> endpoints_;
  std::size_t current_ = 0;
  std::unique_ptr<asio::ssl::context> tls_;
  std::string token_;
  std::vector<std::unique_ptr<detail::connection>> idle_;
};

}  // namespace fezz::etcd
