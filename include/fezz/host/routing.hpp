#pragma once

// The routing snapshot: an immutable route table plus, for each routed
// function, its registry slot and configuration. The control plane builds a new
// snapshot and publishes it; connections read it without a lock.

#include <fezz/context.hpp>
#include <fezz/detail/string_hash.hpp>
#include <fezz/host/function_slot.hpp>
#include <fezz/route_table.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace fezz::host {

struct routing_target {
  std::shared_ptr<function_slot> slot;
  std::shared_ptr<const function_info> info;
};

struct routing_snapshot {
  route_table routes;
  std::unordered_map<std::string, routing_target, detail::string_hash, std::equal_to<>> targets;

  const routing_target* target(std::string_view function_id) const {
    const auto it = targets.find(function_id);
    return it == targets.end() ? nullptr : &it->second;
  }
};

// Where the current snapshot lives. Readers keep a routing_cache and pay one
// relaxed load per request; only after a publish do they take the mutex.
class routing_source {
 public:
  routing_source() : current_(std::make_shared<const routing_snapshot>()) {}

  void publish(std::shared_ptr<const routing_snapshot> next) {
    std::lock_guard lock(mutex_);
    current_ = std::move(next);
    version_.fetch_add(1, std::memory_order_release);
  }
  std::shared_ptr<const routing_snapshot> current(std::uint64_t& version) const {
    std::lock_guard lock(mutex_);
    version = version_.load(std::memory_order_relaxed);
    return current_;
  }
  std::uint64_t version() const noexcept { return version_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const routing_snapshot> current_;
  std::atomic<std::uint64_t> version_{1};
};

class routing_cache {
 public:
  // The snapshot to route this request with; stays valid until the next call.
  const routing_snapshot& get(const routing_source& source) {
    if (!snapshot_ || version_ != source.version()) {
      snapshot_ = source.current(version_);
    }
    return *snapshot_;
  }

 private:
  std::shared_ptr<const routing_snapshot> snapshot_;
  std::uint64_t version_ = 0;
};

}  // namespace fezz::host
