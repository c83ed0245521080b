#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

namespace fezz::detail {

// Lets unordered containers keyed by std::string be searched by string_view
// without building a string.
struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

}  // namespace fezz::detail
