#pragma once

// Fast random numbers for the request path (request ids, picking a version by
// weight): a per-thread xorshift64* generator, so no lock and no syscall. Not for
// anything secret.

#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>

namespace fezz::detail {

inline std::uint64_t thread_random() noexcept {
  thread_local std::uint64_t state = [] {
    const auto seed = static_cast<std::uint64_t>(
        std::chrono::high_resolution_clock::now().time_since_epoch().count());
    const auto thread = std::hash<std::thread::id>{}(std::this_thread::get_id());
    return (seed ^ (thread * 0x9E3779B97F4A7C15ULL)) | 1;  // xorshift needs a non-zero state
  }();
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1DULL;
}

// A number in [0, bound), bound > 0. The modulo's bias is under bound / 2^64.
inline std::uint64_t thread_random_below(std::uint64_t bound) noexcept {
  return thread_random() % bound;
}

}  // namespace fezz::detail
