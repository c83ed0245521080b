#pragma once

// fezz::context: what a function knows about itself and the current call:
// identity, manifest, environment, logger and deadline.

#include <fezz/env_map.hpp>
#include <fezz/manifest.hpp>

#include <spdlog/logger.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace fezz {

// A function's run-time configuration, shared by every call of one routing
// generation: the control plane replaces it, never mutates it.
namespace detail {
class function_instance;
}  // namespace detail

struct function_info {
  owned_manifest manifest;
  // The global environment with the function's own entries laid over it.
  env_map env;
  std::shared_ptr<spdlog::logger> logger;
  // Code from a module (the entry's "module", see <fezz/module.hpp>): makes an instance,
  // opening the module if need be. Empty for the code compiled into the binary.
  std::function<std::unique_ptr<detail::function_instance>()> module_code{};
  std::string module_sha256{};  // which module, empty if none
};

class context {
 public:
  using clock = std::chrono::steady_clock;

  context(const function_info& info, clock::time_point deadline, std::string_view request_id = {})
      : info_(&info), deadline_(deadline), request_id_(request_id) {}

  const std::string& function_id() const noexcept { return info_->manifest.id; }
  // Another name for function_id().
  const std::string& function_name() const noexcept { return function_id(); }
  const std::string& version() const noexcept { return info_->manifest.version; }
  const owned_manifest& manifest() const noexcept { return info_->manifest; }

  std::optional<std::string_view> env(std::string_view key) const {
    const auto it = info_->env.find(key);
    return it == info_->env.end() ? std::nullopt : std::optional<std::string_view>{it->second};
  }
  std::string_view env(std::string_view key, std::string_view fallback) const {
    return env(key).value_or(fallback);
  }
  const env_map& environment() const noexcept { return info_->env; }

  spdlog::logger& logger() const noexcept { return *info_->logger; }

  // When the host stops waiting: a coroutine fetch is cancelled then, and a
  // synchronous one should check `expired()` in long loops.
  clock::time_point deadline() const noexcept { return deadline_; }
  clock::duration remaining() const noexcept { return deadline_ - clock::now(); }
  bool expired() const noexcept { return clock::now() >= deadline_; }

  // The request's x-request-id (echoed or generated); empty in on_load/on_unload.
  std::string_view request_id() const noexcept { return request_id_; }

 private:
  const function_info* info_;
  clock::time_point deadline_;
  std::string_view request_id_;
};

}  // namespace fezz
