#pragma once

// The Date header (RFC 9110 IMF-fixdate), formatted once per second per thread.

#include <ctime>
#include <string>
#include <string_view>

namespace fezz::detail {

inline std::string_view http_date() {
  thread_local std::time_t cached_second = 0;
  thread_local char buffer[32] = {};
  const std::time_t now = std::time(nullptr);  // the vDSO's coarse clock: a few ns
  if (now != cached_second) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(buffer, sizeof buffer, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_second = now;
  }
  return buffer;
}

}  // namespace fezz::detail
