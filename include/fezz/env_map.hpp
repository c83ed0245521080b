#pragma once

// fezz::env_map: a function's environment, name -> value. Looked up by
// string_view without building a string.

#include <functional>
#include <map>
#include <string>

namespace fezz {

using env_map = std::map<std::string, std::string, std::less<>>;

}  // namespace fezz
