#pragma once

// memory_store: the in-memory, thread-safe function_store that Fezz uses by default.

#include <fezz/detail/watch_hub.hpp>
#include <fezz/function_store.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fezz {

class memory_store final : public function_store {
 public:
  memory_store() = default;
  memory_store(const memory_store&) = delete;
  memory_store& operator=(const memory_store&) = delete;

  void register_function(function_entry entry) override {
    check_manifest(entry);
    write(std::move(entry), [](const function_entry*) { return true; });
  }

  bool create(function_entry entry) override {
    check_manifest(entry);
    return write(std::move(entry), [](const function_entry* stored) { return stored == nullptr; });
  }

  bool compare_and_swap(function_entry entry, std::int64_t expected_revision) override {
    check_manifest(entry);
    return write(std::move(entry), [expected_revision](const function_entry* stored) {
      return stored != nullptr && stored->revision == expected_revision;
    });
  }

  std::optional<function_entry> get(std::string_view id) const override {
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find(id); it != entries_.end()) {
      return it->second;
    }
    return std::nullopt;
  }

  std::vector<function_entry> list() const override {
    std::lock_guard lock(mutex_);
    std::vector<function_entry> result;
    result.reserve(entries_.size());
    for (const auto& [id, entry] : entries_) {
      result.push_back(entry);
    }
    return result;
  }

  bool remove(std::string_view id) override {
    std::uint64_t sequence = 0;
    {
      std::lock_guard lock(mutex_);
      auto it = entries_.find(id);
      if (it == entries_.end()) {
        return false;
      }
      it->second.revision = next_revision();
      sequence = hub_->publish({store_event::kind::removed, std::move(it->second)});
      entries_.erase(it);
    }
    hub_->deliver_through(sequence);
    return true;
  }

  [[nodiscard]] subscription watch(watch_callback callback) override {
    const std::uint64_t id = hub_->add(std::move(callback));
    return subscription(detail::watch_hub<store_event>::remover(hub_, id));
  }

  // One membership per store object, like a host's connection to etcd; the node table is
  // the store's, so every memory_store is a cluster of its own.
  void join(node_record node) override {
    check_state(node.state);
    std::lock_guard lock(mutex_);
    if (nodes_.contains(node.name)) {
      throw store_error("cannot join as node '" + node.name + "': a live node of that name exists");
    }
    if (!joined_.empty()) {
      throw store_error("cannot join as node '" + node.name + "': this store already joined as '" +
                        joined_ + "'");
    }
    joined_ = node.name;
    nodes_.emplace(node.name, std::move(node));
  }

  void set_node_state(std::string_view state) override {
    check_state(state);
    std::lock_guard lock(mutex_);
    auto it = nodes_.find(joined_);
    if (joined_.empty() || it == nodes_.end()) {
      throw store_error("cannot set the node state: this store has not joined");
    }
    it->second.state = std::string(state);
  }

  void leave() override {
    std::lock_guard lock(mutex_);
    if (!joined_.empty()) {
      nodes_.erase(joined_);
      joined_.clear();
    }
  }

  std::vector<node_record> nodes() const override {
    std::lock_guard lock(mutex_);
    std::vector<node_record> result;
    for (const auto& [name, node] : nodes_) {
      result.push_back(node);
    }
    return result;
  }

  store_status status() const override {
    std::lock_guard lock(mutex_);
    store_status result;
    result.kind = "memory";
    result.connected = true;
    result.revision = revision_;
    if (revision_ > 0) {
      result.seconds_since_last_event =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - last_change_).count();
    }
    return result;
  }

  void put_module(const std::string& sha256, std::string_view bytes) override {
    std::lock_guard lock(mutex_);
    modules_.insert_or_assign(sha256, std::string(bytes));
  }

  std::optional<std::string> get_module(const std::string& sha256, std::size_t max_bytes) override {
    std::lock_guard lock(mutex_);
    const auto it = modules_.find(sha256);
    if (it == modules_.end()) {
      return std::nullopt;
    }
    if (it->second.size() > max_bytes) {
      throw store_error("module " + sha256 + " is " + std::to_string(it->second.size()) +
                        " bytes, over the limit of " + std::to_string(max_bytes));
    }
    return it->second;
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }

 private:
  static void check_manifest(const function_entry& entry) {
    if (const auto problem = manifest_problem(entry.manifest); !problem.empty()) {
      throw store_error("cannot register function '" + entry.id() + "': " + std::string(problem));
    }
  }

  static void check_state(std::string_view state) {
    if (state != "serving" && state != "draining") {
      throw store_error("node state must be \"serving\" or \"draining\", not '" +
                        std::string(state) + "'");
    }
  }

  // Under the lock: the revision of a change being made now.
  std::int64_t next_revision() {
    last_change_ = std::chrono::steady_clock::now();
    return ++revision_;
  }

  // Stores `entry` if `allowed(stored or nullptr)`, emitting added or updated; an entry equal
  // to the stored one changes nothing. Returns whether `allowed` said yes.
  template <class Condition>
  bool write(function_entry entry, Condition allowed) {
    std::uint64_t sequence = 0;
    {
      std::lock_guard lock(mutex_);
      auto it = entries_.find(entry.id());
      const bool present = it != entries_.end();
      if (!allowed(present ? &it->second : nullptr)) {
        return false;
      }
      if (present && it->second == entry) {
        return true;
      }
      entry.revision = next_revision();
      if (!present) {
        it = entries_.emplace(entry.id(), std::move(entry)).first;
      } else {
        it->second = std::move(entry);
      }
      const auto type = present ? store_event::kind::updated : store_event::kind::added;
      sequence = hub_->publish({type, it->second});
    }
    hub_->deliver_through(sequence);
    return true;
  }

  mutable std::mutex mutex_;  // guards everything below but hub_; never held in a callback
  std::map<std::string, function_entry, std::less<>> entries_;
  std::int64_t revision_ = 0;  // one counter for the whole store, like etcd's
  std::chrono::steady_clock::time_point last_change_;
  std::map<std::string, node_record, std::less<>> nodes_;
  std::map<std::string, std::string> modules_;  // module code by SHA-256
  std::string joined_;                          // the node this store joined as, empty if none
  std::shared_ptr<detail::watch_hub<store_event>> hub_ =
      std::make_shared<detail::watch_hub<store_event>>();
};

}  // namespace fezz
