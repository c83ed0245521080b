#pragma once

// Per-function counters and a latency histogram: relaxed atomics, so the
// request path never takes a lock to count.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace fezz::host {

class latency_histogram {
 public:
  // Upper bounds in microseconds, Prometheus-style cumulative on output.
  static constexpr std::array<std::uint64_t, 14> bounds_us{
      50,     100,    250,    500,     1'000,   2'500,     5'000,
      10'000, 25'000, 50'000, 100'000, 500'000, 1'000'000, 5'000'000};

  void record(std::chrono::nanoseconds elapsed) noexcept {
    const auto us = static_cast<std::uint64_t>(elapsed.count() / 1000);
    std::size_t i = 0;
    while (i < bounds_us.size() && us > bounds_us[i]) {
      ++i;
    }
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<std::uint64_t>(elapsed.count()), std::memory_order_relaxed);
  }

  // Count in bucket i (not cumulative); i == bounds_us.size() is the +Inf bucket.
  std::uint64_t bucket(std::size_t i) const noexcept {
    return buckets_[i].load(std::memory_order_relaxed);
  }
  std::uint64_t count() const noexcept {
    std::uint64_t total = 0;
    for (const auto& b : buckets_) {
      total += b.load(std::memory_order_relaxed);
    }
    return total;
  }
  std::chrono::nanoseconds sum() const noexcept {
    return std::chrono::nanoseconds(sum_ns_.load(std::memory_order_relaxed));
  }

 private:
  std::array<std::atomic<std::uint64_t>, bounds_us.size() + 1> buckets_{};
  std::atomic<std::uint64_t> sum_ns_{0};
};

struct function_metrics {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> errors{0};     // 5xx answers: exceptions, timeouts, failed loads
  std::atomic<std::uint64_t> timeouts{0};   // 504s
  std::atomic<std::uint64_t> throttled{0};  // 429s: over max_concurrency or config::max_in_flight
  // Calls admitted and not yet answered; counted only while a cap applies.
  std::atomic<std::uint64_t> calls{0};
  std::atomic<std::uint64_t> loads{0};
  std::atomic<std::uint64_t> load_failures{0};
  std::atomic<std::uint64_t> unloads{0};
  std::atomic<std::uint64_t> last_load_ns{0};
  std::atomic<std::uint64_t> total_load_ns{0};
  latency_histogram latency;

  static void bump(std::atomic<std::uint64_t>& counter) noexcept {
    counter.fetch_add(1, std::memory_order_relaxed);
  }
};

// A counter's value for a report: relaxed, like every update of it.
inline std::uint64_t read(const std::atomic<std::uint64_t>& counter) noexcept {
  return counter.load(std::memory_order_relaxed);
}

}  // namespace fezz::host
