#pragma once

// The grammar of route patterns and paths: '/'-separated segments, where
// ":name" captures one segment and "*" or "*name" (last only) captures the
// rest. Empty segments are ignored.

#include <cstddef>
#include <string>
#include <string_view>

namespace fezz::detail {

// The next non-empty '/'-separated segment of `text` at or after `pos`, or "" when
// none is left; `pos` moves past the segment returned.
constexpr std::string_view next_segment(std::string_view text, std::size_t& pos) noexcept {
  while (pos < text.size() && text[pos] == '/') {
    ++pos;
  }
  const std::size_t start = pos;
  while (pos < text.size() && text[pos] != '/') {
    ++pos;
  }
  return text.substr(start, pos - start);
}

constexpr bool is_parameter_segment(std::string_view segment) noexcept {
  return !segment.empty() && segment.front() == ':';
}

constexpr bool is_wildcard_segment(std::string_view segment) noexcept {
  return !segment.empty() && segment.front() == '*';
}

// The name a parameter or wildcard segment binds: ":id" -> "id", "*rest" -> "rest", "*" -> "*".
constexpr std::string_view capture_name(std::string_view segment) noexcept {
  return segment.size() == 1 && segment.front() == '*' ? segment : segment.substr(1);
}

// Why `pattern` is not a valid route pattern, or "" if it is.
constexpr std::string_view pattern_problem(std::string_view pattern) noexcept {
  if (pattern.empty() || pattern.front() != '/') {
    return "a pattern must start with '/'";
  }
  std::size_t pos = 0;
  for (std::string_view segment = next_segment(pattern, pos); !segment.empty();
       segment = next_segment(pattern, pos)) {
    if (!is_parameter_segment(segment) && !is_wildcard_segment(segment)) {
      continue;
    }
    if (segment == ":") {
      return "a ':' parameter needs a name";
    }
    if (is_wildcard_segment(segment)) {
      std::size_t after = pos;
      if (!next_segment(pattern, after).empty()) {
        return "a '*' wildcard must be the last segment";
      }
    }
    // Patterns are short, so a quadratic scan for an earlier capture of the same name is fine.
    const std::string_view name = capture_name(segment);
    std::size_t earlier_pos = 0;
    for (std::string_view earlier = next_segment(pattern, earlier_pos);
         earlier.data() != segment.data(); earlier = next_segment(pattern, earlier_pos)) {
      if ((is_parameter_segment(earlier) || is_wildcard_segment(earlier)) &&
          capture_name(earlier) == name) {
        return "parameter names must be unique";
      }
    }
  }
  return {};
}

// The pattern with empty segments dropped: "//users/:id/" -> "/users/:id". Two routes
// with the same method and canonical pattern are the same route.
inline std::string canonical_pattern(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size());
  std::size_t pos = 0;
  for (std::string_view segment = next_segment(pattern, pos); !segment.empty();
       segment = next_segment(pattern, pos)) {
    out += '/';
    out += segment;
  }
  if (out.empty()) {
    out = "/";
  }
  return out;
}

// The canonical pattern with capture names dropped: "/users/:id/*rest" ->
// "/users/:/*". Routes of one shape match exactly the same paths.
inline std::string pattern_shape(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size());
  std::size_t pos = 0;
  for (std::string_view segment = next_segment(pattern, pos); !segment.empty();
       segment = next_segment(pattern, pos)) {
    out += '/';
    out += is_parameter_segment(segment)  ? std::string_view(":")
           : is_wildcard_segment(segment) ? std::string_view("*")
                                          : segment;
  }
  if (out.empty()) {
    out = "/";
  }
  return out;
}

}  // namespace fezz::detail
