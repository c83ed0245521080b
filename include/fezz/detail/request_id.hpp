#pragma once

// x-request-id: a client's id is echoed when it is sane; otherwise a new
// random 16-hex-digit id is made from a per-thread generator (no lock, no syscall).

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

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
  thread_local std::uint64_t state = [] {
    const auto seed = static_cast<std::uint64_t>(
        std::chrono::high_resolution_clock::now().time_since_epoch().count());
    const auto thread = std::hash<std::thread::id>{}(std::this_thread::get_id());
    return (seed ^ (thread * 0x9E3779B97F4A7C15ULL)) | 1;  // xorshift needs a non-zero state
  }();
  // xorshift64*
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  std::uint64_t value = state * 0x2545F4914F6CDD1DULL;
  static constexpr std::string_view digits = "0123456789abcdef";
  out.resize(16);
  for (auto it = out.rbegin(); it != out.rend(); ++it) {
    *it = digits[value & 0xF];
    value >>= 4;
  }
}

}  // namespace fezz::detail
