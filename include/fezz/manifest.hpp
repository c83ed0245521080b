#pragma once

// A function's metadata: the compile-time `manifest` that FEZZ_FUNCTION
// produces, and the `owned_manifest` the control plane keeps and may override.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace fezz {

// Compile-time metadata; every member but `id` has a default.
struct manifest {
  std::string_view id;
  std::string_view version = "v1";
  std::string_view method = "GET";
  std::string_view path = "/";
  std::chrono::seconds timeout{30};
  std::string_view description = "";
  // Calls in flight at once; beyond it a request gets 429. 0: no limit.
  std::uint32_t max_concurrency = 0;
};

// The run-time copy, owned so the control plane can change it.
struct owned_manifest {
  std::string id;
  std::string version = "v1";
  std::string method = "GET";
  std::string path = "/";
  std::chrono::seconds timeout{30};
  std::string description;
  std::uint32_t max_concurrency = 0;

  owned_manifest() = default;
  owned_manifest(std::string id, std::string version, std::string method, std::string path)
      : id(std::move(id)),
        version(std::move(version)),
        method(std::move(method)),
        path(std::move(path)) {}
  explicit owned_manifest(const manifest& m)
      : id(m.id),
        version(m.version),
        method(m.method),
        path(m.path),
        timeout(m.timeout),
        description(m.description),
        max_concurrency(m.max_concurrency) {}

  friend bool operator==(const owned_manifest&, const owned_manifest&) = default;
};

// True for an HTTP method token a route can name: upper-case letters, or "ANY".
constexpr bool is_valid_method(std::string_view method) noexcept {
  if (method.empty() || method.size() > 16) {
    return false;
  }
  for (char c : method) {
    if (c < 'A' || c > 'Z') {
      return false;
    }
  }
  return true;
}

// The checks FEZZ_FUNCTION applies at compile time and the control plane at run time.
constexpr std::string_view manifest_problem(std::string_view id, std::string_view method,
                                            std::string_view path,
                                            std::chrono::seconds timeout) noexcept {
  if (id.empty()) {
    return "id must not be empty";
  }
  if (!is_valid_method(method)) {
    return "method must be an upper-case HTTP method token or ANY";
  }
  if (path.empty() || path.front() != '/') {
    return "path must start with '/'";
  }
  if (timeout <= std::chrono::seconds::zero()) {
    return "timeout must be positive";
  }
  return {};
}

constexpr std::string_view manifest_problem(const manifest& m) noexcept {
  return manifest_problem(m.id, m.method, m.path, m.timeout);
}

inline std::string_view manifest_problem(const owned_manifest& m) noexcept {
  return manifest_problem(m.id, m.method, m.path, m.timeout);
}

}  // namespace fezz
