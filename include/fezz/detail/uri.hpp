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
