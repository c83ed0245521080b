#pragma once

// Fezz's version. CMake reads its package version from this line, so there is one
// place to change it.

#include <string_view>

namespace fezz {

inline constexpr std::string_view version = "0.1.0";

}  // namespace fezz
