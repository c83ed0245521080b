#pragma once

// The clock of connection deadlines. Those are seconds long, and read several
// times per request: CLOCK_MONOTONIC_COARSE (a few milliseconds of
// resolution) is read without touching the TSC, for a fraction of
// steady_clock's cost. Elsewhere it is steady_clock.

#include <chrono>
#include <ctime>

namespace fezz::detail {

struct coarse_clock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<coarse_clock>;
  static constexpr bool is_steady = true;

  static time_point now() noexcept {
#ifdef CLOCK_MONOTONIC_COARSE
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
#else
    return time_point(
        std::chrono::duration_cast<duration>(std::chrono::steady_clock::now().time_since_epoch()));
#endif
  }
};

}  // namespace fezz::detail
