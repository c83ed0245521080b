#pragma once

// x-request-id: a client's id is echoed when it is sane; otherwise a new
// random 16-hex-digit id is made (detail::thread_random: no lock, no syscall).

#include <fezz/detail/random.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace fezz::detail {

inline bool is_acceptable_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128) {
    return false;
  }
  for (const char c : id) {
    if (c < 0x21 || c > 0x7e) {
      return false;
    }
  }
  return true;
}

// Writes a new id into `out`, reusing its storage.
inline void make_request_id(std::string& out) {
  std::uint64_t value = thread_random();
  static constexpr std::string_view digits = "0123456789abcdef";
  out.resize(16);
  for (auto it = out.rbegin(); it != out.rend(); ++it) {
    *it = digits[value & 0xF];
    value >>= 4;
  }
}

}  // namespace fezz::detail
