#pragma once

// Dates as text: the Date header (RFC 9110 IMF-fixdate), formatted once per
// second per thread, and RFC 3339 timestamps for records in the store.

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

// Now, in UTC, to the second: "2026-12-01T21:30:00Z".
inline std::string utc_now_rfc3339() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buffer[32] = {};
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

}  // namespace fezz::detail
