#pragma once

// Keeps what clients can trigger from flooding the log: at most `burst` lines
// per `interval`; the rest are counted, and the next line let through says how
// many were left out.

#include <fmt/format.h>
#include <spdlog/logger.h>

#include <chrono>
#include <cstdint>
#include <iterator>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace fezz::detail {

class log_limiter {
 public:
  using clock = std::chrono::steady_clock;

  // `burst` 0 lets every line through.
  explicit log_limiter(unsigned burst, clock::duration interval = std::chrono::seconds(1))
      : burst_(burst), interval_(interval) {}

  // nullopt: leave this line out. Otherwise the line goes out, and the value is
  // how many were left out since the last one that did.
  std::optional<std::uint64_t> admit() {
    if (burst_ == 0) {
      return 0;
    }
    const auto now = clock::now();
    std::lock_guard lock(mutex_);  // only lines to log come here, never the request path
    if (now - window_start_ >= interval_) {
      window_start_ = now;
      used_ = 0;
    }
    if (used_ >= burst_) {
      ++left_out_;
      return std::nullopt;
    }
    ++used_;
    const auto left_out = left_out_;
    left_out_ = 0;
    return left_out;
  }

  // Logs one line if admitted, with the count of lines left out before it.
  template <class... Args>
  void log(spdlog::logger& logger, spdlog::level::level_enum level,
           fmt::format_string<Args...> format, Args&&... args) {
    if (!logger.should_log(level)) {
      return;
    }
    const auto left_out = admit();
    if (!left_out) {
      return;
    }
    std::string line = fmt::format(format, std::forward<Args>(args)...);
    if (*left_out > 0) {
      fmt::format_to(std::back_inserter(line), " ({} similar lines left out)", *left_out);
    }
    logger.log(level, line);
  }

 private:
  const unsigned burst_;
  const clock::duration interval_;
  std::mutex mutex_;
  clock::time_point window_start_{};
  unsigned used_ = 0;
  std::uint64_t left_out_ = 0;
};

}  // namespace fezz::detail
