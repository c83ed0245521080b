#pragma once

// fezz::request: what a function's fetch receives. It owns the Beast message
// the connection parsed (moved in, never copied) plus the route's path parameters.

#include <fezz/route_table.hpp>

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
  // The request target as sent: path and query, not decoded (the seed's `url`).
  std::string_view target() const noexcept { return message_.target(); }
  std::string_view url() const noexcept { return target(); }
  std::string_view path() const noexcept { return target().substr(0, target().find('?')); }
  std::string_view query() const noexcept {
    const auto q = target().find('?');
    return q == std::string_view::npos ? std::string_view{} : target().substr(q + 1);
  }
  // The first value of a query parameter, percent-decoded ('+' as space).
  std::optional<std::string> query_param(std::string_view name) const;

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
  std::string_view param(std::string_view name) const noexcept {
    for (const auto& [key, value] : params_) {
      if (key == name) {
        return value;
      }
    }
    return {};
  }
  const path_params& params() const noexcept { return params_; }
  void params(path_params params) { params_ = std::move(params); }

  const message_type& message() const noexcept { return message_; }
  message_type& message() noexcept { return message_; }

 private:
  message_type message_;
  path_params params_;
};

namespace detail {

// Decodes %XX escapes (and '+' as space for form-style query strings); a
// malformed escape is kept as written. (Path parameters are decoded by the
// route table, a segment at a time.)
inline std::string percent_decode(std::string_view in, bool plus_as_space) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%' && i + 2 < in.size()) {
      const int hi = hex_digit_value(in[i + 1]);
      const int lo = hex_digit_value(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_as_space && c == '+' ? ' ' : c);
  }
  return out;
}

}  // namespace detail

inline std::optional<std::string> request::query_param(std::string_view name) const {
  std::string_view rest = query();
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    const auto eq = pair.find('=');
    if (detail::percent_decode(pair.substr(0, eq), true) == name) {
      return eq == std::string_view::npos ? std::string{}
                                          : detail::percent_decode(pair.substr(eq + 1), true);
    }
  }
  return std::nullopt;
}

}  // namespace fezz
