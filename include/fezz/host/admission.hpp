#pragma once

// Admission: a function call must fit under the host's cap on calls in flight
// (config::max_in_flight) and its function's own (manifest max_concurrency).
// One that does not is answered 429 with Retry-After, at once, so overload
// degrades into refusals instead of queues that grow until the node falls over.

#include <fezz/host/error_answers.hpp>
#include <fezz/host/host_state.hpp>
#include <fezz/host/routing.hpp>

#include <fmt/format.h>

#include <atomic>
#include <cstdint>
#include <utility>
#include <variant>

namespace fezz::host {

// Holds a call's place under the caps it counts against; gives it back when destroyed.
class call_permit {
 public:
  call_permit() noexcept = default;  // counts against nothing
  call_permit(call_permit&& other) noexcept
      : host_(std::exchange(other.host_, nullptr)),
        function_(std::exchange(other.function_, nullptr)) {}
  call_permit& operator=(call_permit&& other) noexcept {
    if (this != &other) {
      release();
      host_ = std::exchange(other.host_, nullptr);
      function_ = std::exchange(other.function_, nullptr);
    }
    return *this;
  }
  call_permit(const call_permit&) = delete;
  call_permit& operator=(const call_permit&) = delete;
  ~call_permit() { release(); }

 private:
  friend std::variant<call_permit, response> admit(host_state&, const routing_target&);

  // Takes a place in `calls` if it holds fewer than `cap`; true if it did.
  static bool take(std::atomic<std::uint64_t>& calls, std::uint64_t cap) noexcept {
    if (calls.fetch_add(1, std::memory_order_relaxed) < cap) {
      return true;
    }
    calls.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  void release() noexcept {
    if (host_ != nullptr) {
      std::exchange(host_, nullptr)->fetch_sub(1, std::memory_order_relaxed);
    }
    if (function_ != nullptr) {
      std::exchange(function_, nullptr)->fetch_sub(1, std::memory_order_relaxed);
    }
  }

  std::atomic<std::uint64_t>* host_ = nullptr;
  std::atomic<std::uint64_t>* function_ = nullptr;
};

// A permit for one call of `target`, or the 429 that answers it instead. With
// no caps set this touches no shared counter.
inline std::variant<call_permit, response> admit(host_state& host, const routing_target& target) {
  call_permit permit;
  const std::uint64_t host_cap = host.settings.max_in_flight();
  const std::uint64_t function_cap = target.info->manifest.max_concurrency;
  function_metrics& metrics = target.slot->metrics();
  const auto refuse = [&](std::string message) {
    function_metrics::bump(metrics.throttled);
    host.metrics.throttled_total.fetch_add(1, std::memory_order_relaxed);
    return too_many_requests(std::move(message));
  };
  if (host_cap != 0) {
    if (!call_permit::take(host.metrics.calls, host_cap)) {
      return refuse(fmt::format("the host is at its limit of {} calls in flight", host_cap));
    }
    permit.host_ = &host.metrics.calls;
  }
  if (function_cap != 0) {
    if (!call_permit::take(metrics.calls, function_cap)) {
      return refuse(fmt::format("function '{}' is at its limit of {} concurrent calls",
                                target.info->manifest.id, function_cap));
    }
    permit.function_ = &metrics.calls;
  }
  return permit;
}

}  // namespace fezz::host
