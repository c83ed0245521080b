#pragma once

// watch_hub: delivers a store's events to its watchers in order, never concurrently, with
// the subscription-reset guarantee of function_store::watch. Shared by every store, as
// watch_hub<store_event>.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>

namespace fezz {

namespace detail {

// Delivers a store's events to its watchers, one event at a time and in order, without
// holding any lock while a callback runs. Shared with subscriptions through a weak_ptr, so
// a subscription may outlive its store.
template <class Event>
class watch_hub {
 public:
  using watch_callback = std::function<void(const Event&)>;

  // Queues an event and returns its sequence number. The store calls this while holding
  // its own lock, so the queue order is the order of the changes.
  std::uint64_t publish(Event event) {
    std::lock_guard lock(mutex_);
    pending_.push_back({++last_sequence_, std::move(event)});
    return last_sequence_;
  }

  // Delivers queued events until the one numbered `sequence` has been delivered. The
  // thread that finds delivery idle drains the whole queue; others wait for it. A change
  // made inside a callback is left in the queue for the loop that is running it.
  void deliver_through(std::uint64_t sequence) {
    const auto self = std::this_thread::get_id();
    std::unique_lock lock(mutex_);
    if (deliverer_ == self) {
      return;
    }
    changed_.wait(lock, [&] { return delivered_ >= sequence || deliverer_ == std::thread::id{}; });
    if (delivered_ >= sequence) {
      return;
    }
    deliverer_ = self;
    while (!pending_.empty()) {
      auto [event_sequence, event] = std::move(pending_.front());
      pending_.pop_front();
      // Watchers are ordered by id, and a later id never starts at an earlier sequence,
      // so the first watcher that started after this event ends the loop.
      auto it = watchers_.begin();
      while (it != watchers_.end() && it->second.first_sequence <= event_sequence) {
        const std::uint64_t watcher_id = it->first;
        auto callback = it->second.callback;
        running_ = watcher_id;
        lock.unlock();
        invoke(*callback, event);
        callback.reset();  // if it unsubscribed meanwhile, it is destroyed here, unlocked
        lock.lock();
        running_ = 0;
        changed_.notify_all();
        it = watchers_.upper_bound(watcher_id);  // the map may have changed while unlocked
      }
      delivered_ = event_sequence;
      changed_.notify_all();
    }
    deliverer_ = {};
    changed_.notify_all();
  }

  std::uint64_t add(watch_callback callback) {
    if (!callback) {
      throw std::invalid_argument("watch callback must not be empty");
    }
    auto shared = std::make_shared<watch_callback>(std::move(callback));
    std::lock_guard lock(mutex_);
    watchers_.emplace(++last_watcher_, watcher{last_sequence_ + 1, std::move(shared)});
    return last_watcher_;
  }

  // What a subscription to watcher `id` calls to end it: removes the watcher if `hub` still
  // exists (a subscription may outlive its store).
  static std::function<void()> remover(const std::shared_ptr<watch_hub>& hub, std::uint64_t id) {
    return [weak = std::weak_ptr(hub), id] {
      if (auto alive = weak.lock()) {
        alive->remove(id);
      }
    };
  }

  // Returns once the callback is not running, unless called from the delivering thread
  // (from inside this or another callback), where waiting would deadlock.
  void remove(std::uint64_t id) {
    std::shared_ptr<watch_callback> doomed;  // destroyed after the lock is released
    std::unique_lock lock(mutex_);
    if (auto it = watchers_.find(id); it != watchers_.end()) {
      doomed = std::move(it->second.callback);
      watchers_.erase(it);
    }
    if (deliverer_ != std::this_thread::get_id()) {
      changed_.wait(lock, [&] { return running_ != id; });
    }
  }

 private:
  struct watcher {
    std::uint64_t first_sequence;  // the first event this watcher receives
    std::shared_ptr<watch_callback> callback;
  };

  // The change is already made when its callbacks run, so there is no caller to report a
  // throwing callback to; terminating beats leaving delivery stuck for every thread.
  static void invoke(const watch_callback& callback, const Event& event) noexcept {
    callback(event);
  }

  std::mutex mutex_;
  std::condition_variable changed_;  // a callback returned or a delivery loop ended
  std::map<std::uint64_t, watcher> watchers_;
  std::uint64_t last_watcher_ = 0;
  std::deque<std::pair<std::uint64_t, Event>> pending_;
  std::uint64_t last_sequence_ = 0;  // of the last event queued
  std::uint64_t delivered_ = 0;      // every event up to this one has been delivered
  std::thread::id deliverer_;        // the thread running the delivery loop, if any
  std::uint64_t running_ = 0;        // the watcher whose callback is running, 0 if none
};

}  // namespace detail

}  // namespace fezz
