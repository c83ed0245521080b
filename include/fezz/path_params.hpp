#pragma once

// fezz::path_params: the values a route's pattern captured from a path
// (":id" -> "id", "*rest" -> "rest", a bare "*" -> "*"), percent-decoded, in
// pattern order.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fezz {

using path_params = std::vector<std::pair<std::string, std::string>>;

// The value of parameter `name`, or "" if there is none.
inline std::string_view find_param(const path_params& params, std::string_view name) noexcept {
  for (const auto& [key, value] : params) {
    if (key == name) {
      return value;
    }
  }
  return {};
}

}  // namespace fezz
