#pragma once

// store_cache: what an etcd_store knows of etcd. It holds the valid function entries and
// node records under the store's prefix as of the last revision applied, whether the watch
// is connected, and the counters of status(). The store's thread applies full lists
// (apply_snapshot) and watch events (apply_events) to it; callers read it, so reads keep
// answering with the last known state while etcd is unreachable. Every change of an entry
// is published to watchers through a watch_hub, in the order applied; a delivery thread
// (deliver_loop) hands them the events that no writer waits for.
//
// All of it is under one mutex, which also holds whether the store is stopping.

#include <fezz/detail/watch_hub.hpp>
#include <fezz/etcd/gateway_responses.hpp>
#include <fezz/function_store.hpp>
#include <fezz/store_format.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fezz::etcd {

// A full list of the prefix at one revision.
struct snapshot {
  std::int64_t revision = 0;
  std::vector<key_value> kvs;
};

class store_cache {
 public:
  store_cache(const std::string& prefix, std::shared_ptr<spdlog::logger> logger)
      : logger_(std::move(logger)),
        functions_prefix_(fezz::functions_prefix(prefix)),
        nodes_prefix_(fezz::nodes_prefix(prefix)) {}

  store_cache(const store_cache&) = delete;
  store_cache& operator=(const store_cache&) = delete;

  // ---- reads ----------------------------------------------------------------------------

  std::optional<function_entry> get(std::string_view id) const {
    std::lock_guard lock(mutex_);
    if (auto it = functions_.find(id); it != functions_.end()) {
      return it->second;
    }
    return std::nullopt;
  }

  std::vector<function_entry> list() const {
    std::lock_guard lock(mutex_);
    std::vector<function_entry> result;
    result.reserve(functions_.size());
    for (const auto& [id, entry] : functions_) {
      result.push_back(entry);
    }
    return result;
  }

  subscription watch(function_store::watch_callback callback) {
    const std::uint64_t id = hub_->add(std::move(callback));
    return subscription(hub::remover(hub_, id));
  }

  // Every live node, sorted by name.
  std::vector<node_record> nodes() const {
    std::lock_guard lock(mutex_);
    std::vector<node_record> result;
    for (const auto& [name, node] : nodes_) {
      result.push_back(node);
    }
    return result;
  }

  // All but kind and endpoints, which are the store's.
  store_status status() const {
    std::lock_guard lock(mutex_);
    store_status result;
    result.connected = connected_;
    result.revision = revision_;
    if (last_event_) {
      result.seconds_since_last_event =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - *last_event_).count();
    }
    result.reconnects = reconnects_;
    result.resyncs = resyncs_;
    result.invalid_entries = invalid_entries_;
    return result;
  }

  std::int64_t current_revision() const {
    std::lock_guard lock(mutex_);
    return revision_;
  }

  // ---- waiting --------------------------------------------------------------------------

  // Waits until the first list is cached and the watch is on: nullopt then, or after
  // `timeout` the last error ("" if none).
  std::optional<std::string> wait_for_first_sync(std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, timeout, [&] { return synced_ && connected_; })) {
      return last_error_;
    }
    return std::nullopt;
  }

  // Waits until the cache has applied etcd's revision `revision` and every watcher has
  // seen the events up to it; false after `timeout`.
  bool wait_for_revision(std::int64_t revision, std::chrono::milliseconds timeout) const {
    std::uint64_t sequence = 0;
    {
      std::unique_lock lock(mutex_);
      if (!changed_.wait_for(lock, timeout, [&] { return revision_ >= revision; })) {
        return false;
      }
      sequence = published_;
    }
    hub_->deliver_through(sequence);
    return true;
  }

  // Waits until the watch is connected (or not); false after `timeout`.
  bool wait_for_connected(bool connected, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return connected_ == connected; });
  }

  // After a write at `revision`: wait until the cache has it and watchers have seen it,
  // if the watch is connected (otherwise its event comes when the watch is back).
  void settle(std::int64_t revision, std::chrono::milliseconds timeout) {
    if (revision <= 0) {
      return;
    }
    std::uint64_t sequence = 0;
    {
      std::unique_lock lock(mutex_);
      if (!connected_) {
        return;
      }
      if (!changed_.wait_for(lock, timeout, [&] { return revision_ >= revision || !connected_; })) {
        logger_->debug("etcd_store: revision {} not seen on the watch within {} ms", revision,
                       timeout.count());
      }
      sequence = published_;
    }
    hub_->deliver_through(sequence);
  }

  // ---- the connection's state -----------------------------------------------------------

  bool stopping() const {
    std::lock_guard lock(mutex_);
    return stopping_;
  }

  // Marks the store as stopping and wakes every waiter; false if it already was.
  bool stop() {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      return false;
    }
    stopping_ = true;
    delivery_wanted_.notify_all();
    changed_.notify_all();
    return true;
  }

  void set_connected(bool connected, std::string error = {}) {
    std::lock_guard lock(mutex_);
    connected_ = connected;
    if (!error.empty()) {
      last_error_ = std::move(error);
    }
    changed_.notify_all();
  }

  // The watch is on (again, if `reconnected`).
  void set_watching(bool reconnected) {
    std::lock_guard lock(mutex_);
    if (reconnected) {
      ++reconnects_;
    }
    connected_ = true;
    last_error_.clear();
    changed_.notify_all();
  }

  // The watch is off because of `error`: whether it was connected, or nullopt (and nothing
  // changed) if the store is stopping, having closed the connection itself.
  std::optional<bool> set_failed(std::string error) {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      return std::nullopt;
    }
    const bool was_connected = connected_;
    connected_ = false;
    last_error_ = std::move(error);
    changed_.notify_all();
    return was_connected;
  }

  // ---- applying what etcd says ----------------------------------------------------------
  // On the store's thread; events are published to the hub in the order they are applied.

  void advance_revision(std::int64_t revision) {
    std::lock_guard lock(mutex_);
    if (revision > revision_) {
      revision_ = revision;
      changed_.notify_all();
    }
  }

  void apply_events(const std::vector<watch_event>& events) {
    std::lock_guard lock(mutex_);
    last_event_ = std::chrono::steady_clock::now();
    std::int64_t highest = revision_;
    for (const auto& event : events) {
      const auto revision = event.kv.mod_revision;
      if (revision <= revision_) {
        continue;  // already applied (a replay after a reconnect)
      }
      const bool removed = event.type == watch_event::kind::remove;
      apply_locked(event.kv.key, removed ? nullptr : &event.kv, revision);
      highest = std::max(highest, revision);
    }
    revision_ = highest;
    changed_.notify_all();
  }

  // Replaces the cache by a full list at `snap.revision`, publishing the difference.
  void apply_snapshot(snapshot snap) {
    std::lock_guard lock(mutex_);
    std::set<std::string> listed;
    for (const auto& kv : snap.kvs) {
      listed.insert(kv.key);
    }
    std::vector<std::string> vanished;
    for (const auto& [id, entry] : functions_) {
      if (!listed.contains(functions_prefix_ + id)) {
        vanished.push_back(functions_prefix_ + id);
      }
    }
    for (const auto& [name, node] : nodes_) {
      if (!listed.contains(nodes_prefix_ + name)) {
        vanished.push_back(nodes_prefix_ + name);
      }
    }
    std::erase_if(invalid_, [&](const auto& item) { return !listed.contains(item.first); });
    for (const auto& key : vanished) {
      apply_locked(key, nullptr, snap.revision);
    }
    for (const auto& kv : snap.kvs) {
      apply_locked(kv.key, &kv, kv.mod_revision);
    }
    if (synced_) {
      ++resyncs_;
    }
    synced_ = true;
    revision_ = snap.revision;
    changed_.notify_all();
  }

  // ---- delivery -------------------------------------------------------------------------

  // Delivers events nobody waits for (changes made by other clients of etcd), until the
  // store stops. The store's delivery thread runs it.
  void deliver_loop() {
    std::uint64_t done = 0;
    for (;;) {
      std::uint64_t target = 0;
      {
        std::unique_lock lock(mutex_);
        delivery_wanted_.wait(lock, [&] { return stopping_ || published_ > done; });
        if (stopping_) {
          return;
        }
        target = published_;
      }
      hub_->deliver_through(target);
      done = target;
    }
  }

 private:
  using hub = fezz::detail::watch_hub<store_event>;

  // Everything below runs under mutex_.

  enum class key_kind { function, node, other };

  key_kind classify(std::string_view key, std::string_view& name) const {
    if (key.starts_with(functions_prefix_) && key.size() > functions_prefix_.size()) {
      name = key.substr(functions_prefix_.size());
      return key_kind::function;
    }
    if (key.starts_with(nodes_prefix_) && key.size() > nodes_prefix_.size()) {
      name = key.substr(nodes_prefix_.size());
      return key_kind::node;
    }
    return key_kind::other;
  }

  void publish(store_event event) {
    published_ = hub_->publish(std::move(event));
    last_event_ = std::chrono::steady_clock::now();
    delivery_wanted_.notify_one();
  }

  // An invalid value is logged and counted once per version of its key, not on every
  // re-list.
  void note_invalid(const key_value& kv, const std::string& reason) {
    auto [it, added] = invalid_.try_emplace(kv.key, kv.mod_revision);
    if (!added && it->second == kv.mod_revision) {
      return;
    }
    it->second = kv.mod_revision;
    ++invalid_entries_;
    logger_->error("etcd_store: skipping {} (revision {}): {}", kv.key, kv.mod_revision, reason);
  }

  // Applies the value `kv` holds now (nullopt: deleted) at `revision`.
  void apply_locked(const std::string& key, const key_value* kv, std::int64_t revision) {
    std::string_view name;
    const auto kind = classify(key, name);
    if (kind == key_kind::other) {
      return;
    }
    if (kind == key_kind::node) {
      if (kv == nullptr) {
        nodes_.erase(std::string(name));
        invalid_.erase(key);
        return;
      }
      auto parsed = parse_node_record(kv->value, name);
      if (!parsed) {
        note_invalid(*kv, parsed.error());
        nodes_.erase(std::string(name));
        return;
      }
      invalid_.erase(key);
      nodes_.insert_or_assign(std::string(name), std::move(parsed.value()));
      return;
    }
    const auto it = functions_.find(name);
    std::optional<function_entry> now;
    if (kv != nullptr) {
      auto parsed = parse_function_entry(kv->value, name);
      if (parsed) {
        invalid_.erase(key);
        now = std::move(parsed.value());
        now->revision = kv->mod_revision;
      } else {
        note_invalid(*kv, parsed.error());  // served as if absent
      }
    } else {
      invalid_.erase(key);
    }
    if (!now) {
      if (it != functions_.end()) {
        auto gone = std::move(it->second);
        gone.revision = revision;
        functions_.erase(it);
        publish({store_event::kind::removed, std::move(gone)});
      }
      return;
    }
    if (it == functions_.end()) {
      auto& stored = functions_.emplace(std::string(name), std::move(*now)).first->second;
      publish({store_event::kind::added, stored});
    } else if (it->second == *now) {
      it->second.revision = now->revision;  // rewritten unchanged: nothing to tell
    } else {
      it->second = std::move(*now);
      publish({store_event::kind::updated, it->second});
    }
  }

  const std::shared_ptr<spdlog::logger> logger_;
  const std::string functions_prefix_;
  const std::string nodes_prefix_;

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;  // revision_, connected_ or synced_ changed
  std::condition_variable delivery_wanted_;
  std::map<std::string, function_entry, std::less<>> functions_;
  std::map<std::string, node_record, std::less<>> nodes_;
  std::map<std::string, std::int64_t> invalid_;  // key -> the invalid version logged
  std::int64_t revision_ = 0;
  std::uint64_t published_ = 0;  // the hub's sequence of the last event published
  bool synced_ = false;
  bool connected_ = false;
  bool stopping_ = false;
  std::string last_error_;
  std::optional<std::chrono::steady_clock::time_point> last_event_;
  std::uint64_t reconnects_ = 0;
  std::uint64_t resyncs_ = 0;
  std::uint64_t invalid_entries_ = 0;
  std::shared_ptr<hub> hub_ = std::make_shared<hub>();
};

}  // namespace fezz::etcd
