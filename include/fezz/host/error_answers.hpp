#pragma once

// Answers the host gives itself when no function can: one wording for each,
// wherever in the request's path it is given.

#include <fezz/response.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <string_view>

namespace fezz::host {

inline response not_found(std::string_view path) {
  return response::error(http::status::not_found, fmt::format("no function is routed at {}", path));
}

// `allowed` is a range of method names, written into the Allow header.
template <class Methods>
response method_not_allowed(std::string_view method, std::string_view path,
                            const Methods& allowed) {
  return response::error(http::status::method_not_allowed,
                         fmt::format("{} is not allowed on {}", method, path))
      .header(http::field::allow, fmt::format("{}", fmt::join(allowed, ", ")));
}

// Over a cap on calls in flight: try again in a second.
inline response too_many_requests(std::string_view message) {
  return response::error(http::status::too_many_requests, message)
      .header(http::field::retry_after, "1");
}

inline response not_implemented(std::string_view method) {
  return response::error(http::status::not_implemented,
                         fmt::format("method {} is not implemented", method));
}

}  // namespace fezz::host
