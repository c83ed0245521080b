#pragma once

// The control plane's view of the functions: `function_entry` (a manifest plus where and
// how it runs), the `store_event`s a store emits, and `function_store`, the interface
// every control-plane store implements (memory_store, etcd_store), with the node
// membership (`node_record`) and health (`store_status`) a store reports.

#include <fezz/env_map.hpp>
#include <fezz/manifest.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fezz {

// Code from a module (a library built with fezz_add_module) rather than the binary's own.
struct module_source {
  std::string sha256;  // of the library's bytes: 64 lowercase hex digits
  // Where a node reads the library if its module cache lacks it; empty: from the store,
  // where fezzctl deploy put it (function_store::put_module).
  std::string path;

  friend bool operator==(const module_source&, const module_source&) = default;
};

// One of several live versions of a function, each from its own module. A request
// goes to a version with a chance of its weight over the sum of the weights, or to
// the version it names in x-fezz-version. Weight 0: only named requests reach it.
struct function_version {
  std::string name;  // 1 to 64 of A-Z a-z 0-9 . _ - (it travels in a header)
  std::uint32_t weight = 1;
  module_source module;

  friend bool operator==(const function_version&, const function_version&) = default;
};

// A version name's rule: 1 to 64 letters, digits, '.', '_' or '-'.
constexpr bool is_valid_version_name(std::string_view name) noexcept {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

struct function_entry {
  owned_manifest manifest;
  std::vector<std::string> nodes;          // empty: served by every node
  env_map env;                             // per-function environment
  std::optional<module_source> module;     // none: the code compiled into the binary
  std::vector<function_version> versions;  // several live versions instead of one `module`
  // The store's revision of this entry's last change (etcd's mod_revision), set by the store
  // on get, list and events; 0 for an entry not read from a store. Writes ignore it, and
  // equality does not compare it: two entries are equal when their content is.
  std::int64_t revision = 0;

  function_entry() = default;
  explicit function_entry(owned_manifest m) : manifest(std::move(m)) {}

  function_entry& on_node(std::string node) & {
    if (std::find(nodes.begin(), nodes.end(), node) == nodes.end()) {
      nodes.push_back(std::move(node));
    }
    return *this;
  }
  function_entry&& on_node(std::string node) && { return std::move(on_node(std::move(node))); }

  function_entry& with_env(std::string key, std::string value) & {
    env.insert_or_assign(std::move(key), std::move(value));
    return *this;
  }
  function_entry&& with_env(std::string key, std::string value) && {
    return std::move(with_env(std::move(key), std::move(value)));
  }

  // True if `node` should serve this function: no nodes named, `node` named, or "*" named.
  bool serves(std::string_view node) const {
    return nodes.empty() || std::any_of(nodes.begin(), nodes.end(), [&](const std::string& n) {
             return n == node || n == "*";
           });
  }

  const std::string& id() const { return manifest.id; }

  friend bool operator==(const function_entry& a, const function_entry& b) {
    return a.manifest == b.manifest && a.nodes == b.nodes && a.env == b.env &&
           a.module == b.module && a.versions == b.versions;
  }
};

struct store_event {
  enum class kind { added, updated, removed };
  kind type;
  function_entry entry;  // for removed: the entry as it was

  friend bool operator==(const store_event&, const store_event&) = default;
};

constexpr std::string_view to_string(store_event::kind k) noexcept {
  switch (k) {
    case store_event::kind::added:
      return "added";
    case store_event::kind::updated:
      return "updated";
    case store_event::kind::removed:
      return "removed";
  }
  return "unknown";
}

class store_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One host's membership in the cluster, as the store holds it while the host runs.
struct node_record {
  std::string name;               // the node's name, unique among live nodes
  std::string address;            // where the node serves, e.g. "http://127.0.0.1:8080"
  std::string state = "serving";  // "serving" or "draining"
  std::string started;            // when the node started, RFC 3339 UTC ("2026-12-01T21:30:00Z")
  std::string fezz_version;       // the Fezz version the node runs

  friend bool operator==(const node_record&, const node_record&) = default;
};

// What a store says about its own health, for /_metrics and operators.
struct store_status {
  std::string kind;                      // "memory" or "etcd"
  std::vector<std::string> endpoints;    // where the store's data lives; empty for memory
  bool connected = false;                // the store is following its backend right now
  std::int64_t revision = 0;             // the last revision the store has applied
  double seconds_since_last_event = -1;  // negative if no change has been seen yet
  std::uint64_t reconnects = 0;          // connections to the backend re-established
  std::uint64_t resyncs = 0;             // full re-lists after a gap (compaction)
  std::uint64_t invalid_entries = 0;     // entries skipped as invalid, each counted once
};

// RAII handle for a watch: destroying it, or reset(), unsubscribes. Once reset() returns the
// callback is not running and never runs again, except that a callback may reset its own
// subscription, which then takes effect when the callback returns.
class subscription {
 public:
  subscription() = default;
  // For store implementations: `cancel` unsubscribes with the guarantee above.
  explicit subscription(std::function<void()> cancel) noexcept : cancel_(std::move(cancel)) {}

  subscription(subscription&& other) noexcept : cancel_(std::exchange(other.cancel_, nullptr)) {}
  subscription& operator=(subscription&& other) noexcept {
    if (this != &other) {
      reset();
      cancel_ = std::exchange(other.cancel_, nullptr);
    }
    return *this;
  }
  subscription(const subscription&) = delete;
  subscription& operator=(const subscription&) = delete;
  ~subscription() { reset(); }

  void reset() {
    if (auto cancel = std::exchange(cancel_, nullptr)) {
      cancel();
    }
  }

  explicit operator bool() const noexcept { return static_cast<bool>(cancel_); }

 private:
  std::function<void()> cancel_;
};

class function_store {
 public:
  using watch_callback = std::function<void(const store_event&)>;

  virtual ~function_store() = default;

  // Adds or replaces the entry with this id and emits added or updated; an entry equal to
  // the stored one changes nothing and emits nothing. Throws store_error if the manifest
  // is invalid (see manifest_problem).
  virtual void register_function(function_entry entry) = 0;

  virtual std::optional<function_entry> get(std::string_view id) const = 0;

  // Every entry, sorted by id.
  virtual std::vector<function_entry> list() const = 0;

  // Removes the entry and emits removed; false if there was none.
  virtual bool remove(std::string_view id) = 0;

  // Adds the entry only if no entry has its id: false, changing nothing, if one has.
  // Throws store_error like register_function.
  virtual bool create(function_entry entry) = 0;

  // Replaces the entry only if the stored one's revision is `expected_revision` (as read
  // with get or list): false, changing nothing, if it has changed since or is absent.
  // Throws store_error like register_function.
  virtual bool compare_and_swap(function_entry entry, std::int64_t expected_revision) = 0;

  // Node membership: a store holds at most one node of its own. join registers it and
  // throws store_error if a live node of that name exists (or this store already joined);
  // set_node_state changes its state ("serving" or "draining"); leave ends the
  // membership (a no-op if not joined). nodes() lists every live node, sorted by name.
  virtual void join(node_record node) = 0;
  virtual void set_node_state(std::string_view state) = 0;
  virtual void leave() = 0;
  virtual std::vector<node_record> nodes() const = 0;

  virtual store_status status() const = 0;

  // Module code: a function module's bytes kept in the store under their SHA-256, so that
  // nodes with no shared filesystem fetch them (a module_source with no path). put_module
  // throws store_error if this store cannot hold them; get_module returns nullopt if the
  // store does not hold them, and throws store_error if they are over `max_bytes`.
  virtual void put_module(const std::string& /*sha256*/, std::string_view /*bytes*/) {
    throw store_error("this store does not hold module code");
  }
  virtual std::optional<std::string> get_module(const std::string& /*sha256*/,
                                                std::size_t /*max_bytes*/) {
    return std::nullopt;
  }

  // Calls `callback` for every later change, in the order of the changes, never
  // concurrently with itself or other callbacks of this store. A change made outside a
  // callback returns once every watcher has seen it; a change made inside a callback is
  // delivered after the current event. Callbacks must not throw.
  [[nodiscard]] virtual subscription watch(watch_callback callback) = 0;
};

}  // namespace fezz
