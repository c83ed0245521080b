#pragma once

// etcd_store: a function_store kept in etcd v3 (through its HTTP/JSON gateway), so every
// host of a cluster follows one control plane. Keys and values are store_format's.
//
// Reads come from a local cache that the store fills by list-then-watch: it ranges the
// prefix, then watches from the next revision, so get() and list() keep answering with
// the last known state while etcd is unreachable. After a disconnect the watch resumes
// from the last revision applied; when etcd has compacted that history away it re-lists
// and delivers the difference as added/updated/removed events.
//
// Threads: the network runs on the store's own thread (one io_context); the public
// methods post to it and wait, bounded. Watch callbacks never run on that thread: they
// run on a delivery thread of the store's, or on a thread that writes, as memory_store's
// do, so a callback may read and write the store.
//
// The parts, in include/fezz/etcd/: the cache (store_cache.hpp), what keeps it following
// etcd (cache_follower.hpp), the node's membership on a lease (node_membership.hpp), and
// beneath them the gateway's client (gateway_client.hpp) and messages.

#include <fezz/etcd/cache_follower.hpp>
#include <fezz/etcd/gateway_client.hpp>
#include <fezz/etcd/gateway_requests.hpp>
#include <fezz/etcd/gateway_responses.hpp>
#include <fezz/etcd/node_membership.hpp>
#include <fezz/etcd/store_cache.hpp>
#include <fezz/etcd/store_calls.hpp>
#include <fezz/function_store.hpp>
#include <fezz/store_format.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace fezz {

struct etcd_options {
  // "host:port", "http://host:port" or "https://host:port"; failed over in this order.
  std::vector<std::string> endpoints{"http://127.0.0.1:2379"};
  std::string prefix{default_store_prefix};  // every key of this store starts with it
  std::string ca_file;                       // TLS: the CA that signed etcd's certificate (PEM)
  std::string cert_file;                     // TLS: client certificate, optional (PEM)
  std::string key_file;                      // TLS: its key
  std::string user;                          // etcd authentication; empty: none
  std::string password;
  std::chrono::milliseconds connect_timeout{3000};  // TCP connect and TLS handshake
  std::chrono::milliseconds request_timeout{5000};  // one call on one endpoint
  std::chrono::seconds lease_ttl{10};               // of the node's membership
  std::chrono::milliseconds backoff_initial{100};   // reconnecting: first delay, doubled...
  std::chrono::milliseconds backoff_max{5000};      // ...up to this, with jitter
  // A watch that receives nothing for this long is reconnected. etcd sends a progress
  // notification every 10 minutes by default (--experimental-watch-progress-notify-interval).
  std::chrono::milliseconds watch_idle_timeout{std::chrono::minutes(11)};
  std::int64_t page_size = 500;  // keys per range request while listing
  // The constructor waits this long for the first list and throws if it fails; zero: it
  // returns at once and the store keeps trying in the background.
  std::chrono::milliseconds initial_sync_timeout{10000};
  std::shared_ptr<spdlog::logger> logger;  // null: spdlog's default logger
};

class etcd_store final : public function_store {
 public:
  // Starts the store's threads and, unless initial_sync_timeout is zero, waits until the
  // first list is cached and the watch is on. Throws store_error if etcd cannot be reached
  // in time, std::invalid_argument for bad options and std::runtime_error for TLS files
  // that cannot be loaded.
  explicit etcd_store(etcd_options options)
      : options_(normalized(std::move(options))),
        cache_(options_.prefix, options_.logger),
        client_(io_.get_executor(), client_options_of(options_)),
        follower_(io_.get_executor(), client_, cache_, follower_options_of(options_)),
        membership_(io_.get_executor(), client_, cache_, membership_options_of(options_)) {
    for (const auto& e : client_.endpoints()) {
      endpoints_.push_back(e.to_string());
    }
    io_thread_ = std::thread([this] {
      io_.run();
      io_done_.set_value();
    });
    delivery_thread_ = std::thread([this] { cache_.deliver_loop(); });
    boost::asio::co_spawn(io_, follower_.run(), boost::asio::detached);
    if (options_.initial_sync_timeout.count() > 0) {
      if (const auto reason = cache_.wait_for_first_sync(options_.initial_sync_timeout)) {
        stop();
        throw store_error("etcd_store: no list of " + options_.prefix + " from " +
                          comma_joined(endpoints_) + " within " +
                          std::to_string(options_.initial_sync_timeout.count()) +
                          " ms: " + (reason->empty() ? "no answer" : *reason));
      }
    }
  }

  etcd_store(const etcd_store&) = delete;
  etcd_store& operator=(const etcd_store&) = delete;

  // Stops following etcd. Does not leave(): a membership still held ends when its lease
  // expires, one TTL later.
  ~etcd_store() override { stop(); }

  // ---- function_store -------------------------------------------------------------------
  // A write returns once etcd has applied it and, while the watch is connected, once its
  // event has reached the cache and every watcher (bounded by request_timeout), so a
  // caller reads its own write. Writes throw store_error when etcd cannot be reached.

  void register_function(function_entry entry) override {
    auto value = serialize(entry);
    const auto revision = run(put(function_key(options_.prefix, entry.id()), std::move(value)),
                              "register '" + entry.id() + "'");
    settle(revision);
  }

  bool create(function_entry entry) override {
    auto value = serialize(entry);
    const auto outcome = run(guarded_put(etcd::create_if_absent_request(
                                 function_key(options_.prefix, entry.id()), value)),
                             "create '" + entry.id() + "'");
    settle(outcome.revision);
    return outcome.succeeded;
  }

  bool compare_and_swap(function_entry entry, std::int64_t expected_revision) override {
    auto value = serialize(entry);
    if (expected_revision <= 0) {  // MOD == 0 would create an absent key
      return false;
    }
    const auto outcome =
        run(guarded_put(etcd::compare_and_swap_request(function_key(options_.prefix, entry.id()),
                                                       value, expected_revision)),
            "compare-and-swap '" + entry.id() + "'");
    settle(outcome.revision);
    return outcome.succeeded;
  }

  bool remove(std::string_view id) override {
    const auto outcome =
        run(remove_key(function_key(options_.prefix, id)), "remove '" + std::string(id) + "'");
    settle(outcome.revision);
    return outcome.succeeded;
  }

  std::optional<function_entry> get(std::string_view id) const override { return cache_.get(id); }

  // The chunks first, the record last: a reader that finds the record finds every chunk.
  // Bytes already held (the record is there) are not written again.
  void put_module(const std::string& sha256, std::string_view bytes) override {
    const std::string what = "store module " + sha256;
    if (run(read_key(module_key(options_.prefix, sha256)), what)) {
      return;
    }
    const module_record record{bytes.size(), module_chunks_for(bytes.size())};
    for (std::uint64_t n = 0; n < record.chunks; ++n) {
      const auto chunk = bytes.substr(n * module_chunk_bytes, module_chunk_bytes);
      run(put(module_chunk_key(options_.prefix, sha256, n), std::string(chunk)), what);
    }
    run(put(module_key(options_.prefix, sha256), to_json(record)), what);
  }

  std::optional<std::string> get_module(const std::string& sha256, std::size_t max_bytes) override {
    const std::string what = "fetch module " + sha256;
    const auto text = run(read_key(module_key(options_.prefix, sha256)), what);
    if (!text) {
      return std::nullopt;
    }
    const auto record = parse_module_record(*text);
    if (!record) {
      throw store_error("cannot " + what + ": " + record.error());
    }
    if (record.value().size > max_bytes) {
      throw store_error("module " + sha256 + " is " + std::to_string(record.value().size) +
                        " bytes, over the limit of " + std::to_string(max_bytes));
    }
    std::string bytes;
    bytes.reserve(record.value().size);
    for (std::uint64_t n = 0; n < record.value().chunks; ++n) {
      const auto chunk = run(read_key(module_chunk_key(options_.prefix, sha256, n)), what);
      if (!chunk || bytes.size() + chunk->size() > record.value().size) {
        throw store_error("cannot " + what + ": chunk " + std::to_string(n) +
                          (chunk ? " goes past the recorded size" : " is missing"));
      }
      bytes += *chunk;
    }
    if (bytes.size() != record.value().size) {
      throw store_error("cannot " + what + ": its chunks hold " + std::to_string(bytes.size()) +
                        " bytes, not " + std::to_string(record.value().size));
    }
    return bytes;
  }

  std::vector<function_entry> list() const override { return cache_.list(); }

  [[nodiscard]] subscription watch(watch_callback callback) override {
    return cache_.watch(std::move(callback));
  }

  // ---- membership -----------------------------------------------------------------------

  // Grants a lease (lease_ttl), creates <prefix>nodes/<name> on it if no live node holds
  // the name, and keeps the lease alive every TTL/3. If the lease is lost (etcd forgot it,
  // or it expired while etcd was unreachable) the store registers again on a new one.
  void join(node_record node) override {
    if (node.name.empty() || node.name.find('/') != std::string::npos) {
      throw store_error("cannot join as node '" + node.name +
                        "': a node name must be non-empty and without '/'");
    }
    if (!is_valid_node_state(node.state)) {
      throw store_error("cannot join as node '" + node.name +
                        "': state must be \"serving\" or \"draining\"");
    }
    (void)serialize_node(node);
    const auto name = node.name;
    const auto revision = run(membership_.join(std::move(node)), "join as node '" + name + "'");
    settle(revision);
  }

  void set_node_state(std::string_view state) override {
    if (!is_valid_node_state(state)) {
      throw store_error("node state must be \"serving\" or \"draining\", not '" +
                        std::string(state) + "'");
    }
    const auto revision = run(membership_.set_state(std::string(state)), "set the node state");
    settle(revision);
  }

  void leave() override {
    const auto revision = run(membership_.leave(), "leave");
    settle(revision);
  }

  // Every live node, from the cache, sorted by name.
  std::vector<node_record> nodes() const override { return cache_.nodes(); }

  store_status status() const override {
    store_status result = cache_.status();
    result.kind = "etcd";
    result.endpoints = endpoints_;
    return result;
  }

  // ---- for tests and tools --------------------------------------------------------------

  // Waits until the cache has applied etcd's revision `revision` and every watcher has
  // seen the events up to it; false after `timeout`.
  bool wait_for_revision(std::int64_t revision, std::chrono::milliseconds timeout) const {
    return cache_.wait_for_revision(revision, timeout);
  }

  // Waits until the watch is connected (or not); false after `timeout`.
  bool wait_for_connected(bool connected, std::chrono::milliseconds timeout) const {
    return cache_.wait_for_connected(connected, timeout);
  }

  const etcd_options& options() const noexcept { return options_; }

 private:
  template <class T>
  using awaitable = boost::asio::awaitable<T>;

  struct guarded_outcome {
    bool succeeded = false;
    std::int64_t revision = 0;
  };

  static etcd_options normalized(etcd_options options) {
    if (options.prefix.empty()) {
      throw std::invalid_argument("etcd_store: the prefix must not be empty");
    }
    if (options.lease_ttl < std::chrono::seconds(2)) {
      options.lease_ttl = std::chrono::seconds(2);  // etcd's minimum TTL
    }
    if (options.page_size <= 0) {
      options.page_size = 500;
    }
    if (!options.logger) {
      options.logger = spdlog::default_logger();
    }
    return options;
  }

  static etcd::client_options client_options_of(const etcd_options& o) {
    etcd::client_options c;
    c.endpoints = o.endpoints;
    c.ca_file = o.ca_file;
    c.cert_file = o.cert_file;
    c.key_file = o.key_file;
    c.user = o.user;
    c.password = o.password;
    c.connect_timeout = o.connect_timeout;
    c.request_timeout = o.request_timeout;
    c.logger = o.logger;
    return c;
  }

  static std::string comma_joined(const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& p : parts) {
      out += (out.empty() ? "" : ",") + p;
    }
    return out;
  }

  static std::string serialize(const function_entry& entry) {
    if (const auto problem = manifest_problem(entry.manifest); !problem.empty()) {
      throw store_error("cannot register function '" + entry.id() + "': " + std::string(problem));
    }
    return to_json(entry);
  }

  static std::string serialize_node(const node_record& node) { return to_json(node); }

  static etcd::follower_options follower_options_of(const etcd_options& o) {
    etcd::follower_options f;
    f.prefix = o.prefix;
    f.page_size = o.page_size;
    f.backoff_initial = o.backoff_initial;
    f.backoff_max = o.backoff_max;
    f.watch_idle_timeout = o.watch_idle_timeout;
    f.logger = o.logger;
    return f;
  }

  static etcd::membership_options membership_options_of(const etcd_options& o) {
    etcd::membership_options m;
    m.prefix = o.prefix;
    m.lease_ttl = o.lease_ttl;
    m.logger = o.logger;
    return m;
  }

  // ---- running on the store's thread ------------------------------------------------------

  // The longest a public method waits for the store's thread: every endpoint tried, twice
  // over for a login, plus a margin.
  std::chrono::milliseconds operation_bound() const {
    const auto per_endpoint = options_.connect_timeout + options_.request_timeout;
    return per_endpoint * static_cast<long>(2 * endpoints_.size() + 1) + std::chrono::seconds(1);
  }

  // Runs `operation` on the store's thread and waits for it; its store_error is rethrown.
  template <class T>
  T run(awaitable<T> operation, const std::string& what) {
    if (std::this_thread::get_id() == io_thread_.get_id()) {
      throw store_error("etcd_store: " + what + " called from the store's own thread");
    }
    if (cache_.stopping()) {
      throw store_error("cannot " + what + ": the store is stopping");
    }
    auto future = boost::asio::co_spawn(io_, std::move(operation), boost::asio::use_future);
    if (future.wait_for(operation_bound()) != std::future_status::ready) {
      throw store_error("cannot " + what + ": etcd did not answer within " +
                        std::to_string(operation_bound().count()) + " ms");
    }
    try {
      return future.get();
    } catch (const std::future_error&) {
      throw store_error("cannot " + what + ": the store is shutting down");
    }
  }

  awaitable<std::int64_t> put(std::string key, std::string value) {
    auto answer = co_await etcd::call(client_, etcd::paths::put, etcd::put_request(key, value),
                                      etcd::parse_empty_response);
    co_return etcd::value_or_throw(std::move(answer), "write " + key).revision;
  }

  // The value of one key, or nullopt if it is absent.
  awaitable<std::optional<std::string>> read_key(std::string key) {
    // Made before the co_await: g++ 12 frees a default argument's temporary twice in one.
    const etcd::range_options one_key;
    auto request = etcd::range_request(key, one_key);
    auto answer = co_await etcd::call(client_, etcd::paths::range, std::move(request),
                                      etcd::parse_range_response);
    auto range = etcd::value_or_throw(std::move(answer), "read " + key);
    if (range.kvs.empty()) {
      co_return std::nullopt;
    }
    co_return std::move(range.kvs.front().value);
  }

  awaitable<guarded_outcome> guarded_put(std::string txn) {
    auto answer =
        co_await etcd::call(client_, etcd::paths::txn, std::move(txn), etcd::parse_txn_response);
    const auto txn_result = etcd::value_or_throw(std::move(answer), "write to etcd");
    co_return guarded_outcome{txn_result.succeeded, txn_result.revision};
  }

  awaitable<guarded_outcome> remove_key(std::string key) {
    auto answer = co_await etcd::call(client_, etcd::paths::delete_range,
                                      etcd::delete_range_request(key), etcd::parse_delete_response);
    const auto deleted = etcd::value_or_throw(std::move(answer), "delete " + key);
    co_return guarded_outcome{deleted.deleted > 0, deleted.revision};
  }

  // After a write at `revision`: wait until the cache has it and watchers have seen it,
  // if the watch is connected (otherwise its event comes when the watch is back).
  void settle(std::int64_t revision) { cache_.settle(revision, options_.request_timeout); }

  // ---- shutdown -------------------------------------------------------------------------

  void stop() {
    if (!cache_.stop()) {
      return;
    }
    boost::asio::post(io_, [this] {
      follower_.stop();
      membership_.stop();
      client_.close();
    });
    work_.reset();
    // Calls in flight end by their own timeouts; do not wait for them longer than this.
    if (io_done_future_.wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
      io_.stop();
    }
    if (io_thread_.joinable()) {
      io_thread_.join();
    }
    if (delivery_thread_.joinable()) {
      delivery_thread_.join();
    }
  }

  const etcd_options options_;
  std::vector<std::string> endpoints_;
  etcd::store_cache cache_;  // shared with callers, under its own mutex

  // The store's thread and what only it touches.
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  etcd::gateway_client client_;
  etcd::cache_follower follower_;
  etcd::node_membership membership_;

  std::promise<void> io_done_;
  std::future<void> io_done_future_ = io_done_.get_future();
  std::thread io_thread_;
  std::thread delivery_thread_;
};

}  // namespace fezz
