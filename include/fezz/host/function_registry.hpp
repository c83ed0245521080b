#pragma once

// The host's functions: one slot per function id, each holding code (a
// factory) and, only while a request needs it, a loaded instance. The
// registry adds and finds slots, and does what concerns all of them: unload
// the idle ones, unload everything at shutdown, report their status.

#include <fezz/context.hpp>
#include <fezz/detail/log_limiter.hpp>
#include <fezz/function.hpp>
#include <fezz/host/function_slot.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fezz::host {

class function_registry {
 public:
  using clock = std::chrono::steady_clock;
  using handle = std::shared_ptr<function_slot>;

  // `request_log` limits the lines that requests can trigger (failed loads).
  explicit function_registry(
      boost::asio::any_io_executor executor,
      std::shared_ptr<spdlog::logger> logger = spdlog::default_logger(),
      std::shared_ptr<detail::log_limiter> request_log = std::make_shared<detail::log_limiter>(0))
      : executor_(std::move(executor)),
        logger_(std::move(logger)),
        request_log_(std::move(request_log)) {}
  function_registry(const function_registry&) = delete;
  function_registry& operator=(const function_registry&) = delete;
  // Instances still loaded here are destroyed without on_unload: call
  // unload_all() first for an orderly stop.
  ~function_registry() = default;

  // Adds code for an id, with the configuration its loads use (null: none yet;
  // it must be configured before a call acquires it). Throws
  // std::invalid_argument if the id has code already.
  handle add(function_registration registration, std::shared_ptr<const function_info> info) {
    std::lock_guard lock(slots_mutex_);
    const std::string id(registration.static_manifest.id);
    if (slots_.contains(id)) {
      throw std::invalid_argument("function '" + id + "' is already registered");
    }
    auto slot = std::make_shared<function_slot>(std::move(registration), executor_, logger_,
                                                request_log_, std::move(info));
    slots_.emplace(id, slot);
    return slot;
  }

  handle find(std::string_view id) const {
    std::lock_guard lock(slots_mutex_);
    const auto it = slots_.find(id);
    return it == slots_.end() ? nullptr : it->second;
  }

  // Removes the slot of `id` if nothing of it is loaded or loading; true if it did.
  bool remove_if_idle(std::string_view id) {
    std::lock_guard lock(slots_mutex_);
    const auto it = slots_.find(id);
    if (it == slots_.end() || it->second->busy()) {
      return false;
    }
    slots_.erase(it);
    return true;
  }

  std::vector<handle> all() const {
    std::lock_guard lock(slots_mutex_);
    std::vector<handle> out;
    out.reserve(slots_.size());
    for (const auto& [id, slot] : slots_) {
      out.push_back(slot);
    }
    return out;
  }

  // Starts unloading every loaded function idle for at least idle_timeout.
  // Returns how many it started.
  std::size_t unload_idle(clock::duration idle_timeout) {
    std::size_t started = 0;
    for (const auto& slot : all()) {
      started += slot->unload_if_idle(idle_timeout) ? 1 : 0;
    }
    return started;
  }

  // Retires everything and waits until nothing is loaded or loading, or the
  // deadline passes. Returns true if everything unloaded.
  boost::asio::awaitable<bool> unload_all(clock::time_point deadline) {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    for (;;) {
      bool busy = false;
      for (const auto& slot : all()) {
        slot->retire();
        busy = slot->busy() || busy;
      }
      if (!busy) {
        co_return true;
      }
      if (clock::now() >= deadline) {
        co_return false;
      }
      timer.expires_after(std::chrono::milliseconds(5));
      co_await timer.async_wait(boost::asio::use_awaitable);
    }
  }

  std::vector<function_status> status() const {
    std::vector<function_status> out;
    for (const auto& slot : all()) {
      out.push_back(slot->status());
    }
    return out;
  }

 private:
  boost::asio::any_io_executor executor_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<detail::log_limiter> request_log_;
  mutable std::mutex slots_mutex_;  // control path only: add, find, all
  std::map<std::string, handle, std::less<>> slots_;
};

}  // namespace fezz::host
