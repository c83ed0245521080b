#pragma once

// gateway_client: etcd v3's HTTP/JSON gateway over Boost.Beast, for coroutines on one
// io_context (etcd_store's). Unary calls share a few keep-alive connections; each watch
// gets a streaming connection of its own (watch_stream.hpp). Every operation has a timeout. The
// client fails over to the next endpoint when one cannot be reached or answers that it is
// unavailable, speaks TLS with a CA and an optional client certificate, and logs in with etcd's
// user/password, logging in again when etcd says the token is no longer valid.

#include <fezz/etcd/connection.hpp>
#include <fezz/etcd/endpoint.hpp>
#include <fezz/etcd/gateway_requests.hpp>
#include <fezz/etcd/gateway_responses.hpp>
#include <fezz/etcd/line_splitter.hpp>
#include <fezz/etcd/watch_stream.hpp>

#include <ostream>  // before Beast: Boost 1.81's http/status.hpp needs it

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstddef>
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
      tls_ = detail::make_tls_context(options_.ca_file, options_.cert_file, options_.key_file);
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
    const auto excerpt = one_line(std::string(body.substr(0, 200)));
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
