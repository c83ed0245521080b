#pragma once

// fezz::request: what a function's fetch receives. It owns the Beast message
// the connection parsed (moved in, never copied) plus the route's path parameters.

#include <fezz/detail/uri.hpp>
#include <fezz/path_params.hpp>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace fezz {

namespace http = boost::beast::http;

class request {
 public:
  using message_type = http::request<http::string_body>;

  request() = default;
  explicit request(message_type message, path_params params = {})
      : message_(std::move(message)), params_(std::move(params)) {}
  // A request built by hand, for tests and for calling a function directly.
  request(http::verb method, std::string_view target, std::string body = {}) {
    message_.method(method);
    message_.target(target);
    message_.version(11);
    message_.body() = std::move(body);
    message_.prepare_payload();
  }

  http::verb verb() const noexcept { return message_.method(); }
  std::string_view method() const noexcept { return message_.method_string(); }
  // The request target as sent: path and query, not decoded (also `url()`).
  std::string_view target() const noexcept { return message_.target(); }
  std::string_view url() const noexcept { return target(); }
  std::string_view path() const noexcept { return target().substr(0, target().find('?')); }
  std::string_view query() const noexcept {
    const auto q = target().find('?');
    return q == std::string_view::npos ? std::string_view{} : target().substr(q + 1);
  }
  // The first value of a query parameter, percent-decoded ('+' as space).
  std::optional<std::string> query_param(std::string_view name) const {
    return detail::find_query_value(query(), name);
  }

  // Header names are case-insensitive.
  std::optional<std::string_view> get_header(std::string_view name) const {
    const auto it = message_.find(name);
    if (it == message_.end()) {
      return std::nullopt;
    }
    return std::string_view(it->value());
  }
  std::string_view header(std::string_view name, std::string_view fallback = {}) const {
    return get_header(name).value_or(fallback);
  }
  bool has_header(std::string_view name) const { return message_.find(name) != message_.end(); }
  const http::fields& headers() const noexcept { return message_.base(); }

  const std::string& body() const noexcept { return message_.body(); }
  std::string& body() noexcept { return message_.body(); }

  // A path parameter from the route (":id" → param("id"), "*" → param("*")); "" if absent.
  std::string_view param(std::string_view name) const noexcept { return find_param(params_, name); }
  const path_params& params() const noexcept { return params_; }
  void params(path_params params) { params_ = std::move(params); }

  const message_type& message() const noexcept { return message_; }
  message_type& message() noexcept { return message_; }

 private:
  message_type message_;
  path_params params_;
};

}  // namespace fezz
