#pragma once

// The routing snapshot: an immutable route table plus, for each routed
// function, its registry slot and configuration. The control plane builds a new
// snapshot and publishes it; connections read it without a lock.

#include <fezz/context.hpp>
#include <fezz/detail/cow_map.hpp>
#include <fezz/host/function_slot.hpp>
#include <fezz/route_table.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace fezz::host {

struct version_split;

// What a route leads to: a function's slot and configuration, or, for a function
// with several live versions, the versions to pick from (slot and info then null).
struct routing_target {
  std::shared_ptr<function_slot> slot;
  std::shared_ptr<const function_info> info;
  std::shared_ptr<const version_split> versions;
};

// A function's live versions, each its own slot, with their weights.
struct version_split {
  struct version {
    std::string name;
    std::uint32_t weight;
    routing_target target;
  };
  std::vector<version> versions;
  std::uint64_t total_weight = 0;

  // The version `draw` (in [0, total_weight)) falls on.
  const version& pick(std::uint64_t draw) const noexcept {
    for (const auto& v : versions) {
      if (draw < v.weight) {
        return v;
      }
      draw -= v.weight;
    }
    return versions.back();  // not reached while draw < total_weight
  }

  const version* named(std::string_view name) const noexcept {
    for (const auto& v : versions) {
      if (v.name == name) {
        return &v;
      }
    }
    return nullptr;
  }
};

// Copying one is cheap at any size: both parts share their storage with the
// copy until the publisher writes (copy-on-write), so a change costs what it
// touches, not the size of the table.
struct routing_snapshot {
  route_table routes;
  detail::cow_map<routing_target> targets;  // by function id

  const routing_target* target(std::string_view function_id) const {
    return targets.find(function_id);
  }
};

// Where the routes live. The control plane changes the working snapshot in
// place (update), which costs what the change touches; readers get an
// immutable copy of it, made at most once per version and only when someone
// asks, so a burst of changes costs one copy. Readers keep a routing_cache and
// pay one relaxed load per request; only after a change do they take the mutex.
class routing_source {
 public:
  // Runs `change(working snapshot)` and makes it the next version.
  template <class Change>
  void update(Change&& change) {
    std::lock_guard lock(mutex_);
    change(working_);
    version_.fetch_add(1, std::memory_order_release);
  }

  std::shared_ptr<const routing_snapshot> current(std::uint64_t& version) const {
    std::lock_guard lock(mutex_);
    const auto latest = version_.load(std::memory_order_relaxed);
    if (!current_ || published_ != latest) {
      current_ = std::make_shared<const routing_snapshot>(working_);
      published_ = latest;
    }
    version = latest;
    return current_;
  }
  std::uint64_t version() const noexcept { return version_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mutex_;
  routing_snapshot working_;  // the control plane's, under mutex_
  mutable std::shared_ptr<const routing_snapshot> current_;
  mutable std::uint64_t published_ = 0;  // the version current_ was copied at
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
