#pragma once

// Pieces of a request target (RFC 3986): percent-decoding, and looking up a
// parameter of a query string. One rule everywhere: an escape that is not '%'
// followed by two hex digits is kept as written.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace fezz::detail {

constexpr int hex_digit_value(char c) noexcept {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// Appends `in` to `out` with its %XX escapes decoded; with `plus_as_space`
// (form-style query strings) '+' becomes a space.
inline void append_decoded(std::string& out, std::string_view in, bool plus_as_space = false) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%' && i + 2 < in.size()) {
      const int high = hex_digit_value(in[i + 1]);
      const int low = hex_digit_value(in[i + 2]);
      if (high >= 0 && low >= 0) {
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_as_space && c == '+' ? ' ' : c);
  }
}

inline std::string percent_decode(std::string_view in, bool plus_as_space = false) {
  std::string out;
  out.reserve(in.size());
  append_decoded(out, in, plus_as_space);
  return out;
}

// A byte a request target may hold as is: visible ASCII. Controls, space, DEL
// and bytes from 0x80 up never appear unencoded in a URI (RFC 3986 2).
constexpr bool is_target_byte(char c) noexcept {
  return c > 0x20 && c < 0x7f;
}

// The origin-form (path and query) of an absolute-form target such as
// "http://host:8080/a?b" ("/a?b"; "/" when the path is empty); nullopt when
// `target` does not start with a scheme and "://" (RFC 9112 3.2.2).
inline std::optional<std::string> origin_form_of(std::string_view target) {
  const auto colon = target.find("://");
  if (colon == std::string_view::npos || colon == 0) {
    return std::nullopt;
  }
  for (std::size_t i = 0; i < colon; ++i) {
    const char c = target[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool other = (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
    if (!(letter || (i > 0 && other))) {
      return std::nullopt;
    }
  }
  const std::string_view after = target.substr(colon + 3);
  const auto path = after.find_first_of("/?");
  if (path == std::string_view::npos) {
    return std::string("/");
  }
  std::string out(after.substr(path));
  if (out.front() == '?') {
    out.insert(out.begin(), '/');
  }
  return out;
}

// A Host header's value: empty, or a host name / IPv4 / [IPv6] with an
// optional :port, from the characters RFC 3986 allows there.
constexpr bool is_valid_host(std::string_view host) noexcept {
  std::size_t i = 0;
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos) {
      return false;
    }
    for (i = 1; i < close; ++i) {
      const char c = host[i];
      if (!(hex_digit_value(c) >= 0 || c == ':' || c == '.')) {
        return false;
      }
    }
    i = close + 1;
  } else {
    for (; i < host.size() && host[i] != ':'; ++i) {
      const char c = host[i];
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~' || c == '%' || c == '!' ||
                      c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' || c == '*' ||
                      c == '+' || c == ',' || c == ';' || c == '=';
      if (!ok) {
        return false;
      }
    }
  }
  if (i == host.size()) {
    return true;
  }
  if (host[i] != ':') {
    return false;
  }
  for (++i; i < host.size(); ++i) {
    if (host[i] < '0' || host[i] > '9') {
      return false;
    }
  }
  return true;
}

// The decoded value of the first `name=value` pair in `query` (the target's
// part after '?') whose decoded name is `name`; "" for a bare `name`.
inline std::optional<std::string> find_query_value(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (percent_decode(pair.substr(0, eq), true) == name) {
      return eq == std::string_view::npos ? std::string{}
                                          : percent_decode(pair.substr(eq + 1), true);
    }
  }
  return std::nullopt;
}

}  // namespace fezz::detail
