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

#include <fezz/detail/watch_hub.hpp>
#include <fezz/etcd/gateway_client.hpp>
#include <fezz/etcd/gateway_requests.hpp>
#include <fezz/etcd/gateway_responses.hpp>
#include <fezz/function_store.hpp>
#include <fezz/store_format.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
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
        logger_(options_.logger),
        functions_prefix_(fezz::functions_prefix(options_.prefix)),
        nodes_prefix_(fezz::nodes_prefix(options_.prefix)),
        client_(io_.get_executor(), client_options_of(options_)),
        retry_timer_(io_),
        keepalive_timer_(io_),
        random_(std::random_device{}()) {
    for (const auto& e : client_.endpoints()) {
      endpoints_.push_back(e.to_string());
    }
    io_thread_ = std::thread([this] {
      io_.run();
      io_done_.set_value();
    });
    delivery_thread_ = std::thread([this] { deliver_loop(); });
    boost::asio::co_spawn(io_, follow(), boost::asio::detached);
    if (options_.initial_sync_timeout.count() > 0) {
      std::unique_lock lock(mutex_);
      if (!changed_.wait_for(lock, options_.initial_sync_timeout,
                             [&] { return synced_ && connected_; })) {
        const auto reason = last_error_;
        lock.unlock();
        stop();
        throw store_error("etcd_store: no list of " + options_.prefix + " from " +
                          comma_joined(endpoints_) + " within " +
                          std::to_string(options_.initial_sync_timeout.count()) +
                          " ms: " + (reason.empty() ? "no answer" : reason));
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

  std::optional<function_entry> get(std::string_view id) const override {
    std::lock_guard lock(mutex_);
    if (auto it = functions_.find(id); it != functions_.end()) {
      return it->second;
    }
    return std::nullopt;
  }

  std::vector<function_entry> list() const override {
    std::lock_guard lock(mutex_);
    std::vector<function_entry> result;
    result.reserve(functions_.size());
    for (const auto& [id, entry] : functions_) {
      result.push_back(entry);
    }
    return result;
  }

  [[nodiscard]] subscription watch(watch_callback callback) override {
    const std::uint64_t id = hub_->add(std::move(callback));
    return subscription([hub = std::weak_ptr(hub_), id] {
      if (auto alive = hub.lock()) {
        alive->remove(id);
      }
    });
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
    const auto revision = run(do_join(std::move(node)), "join as node '" + name + "'");
    settle(revision);
  }

  void set_node_state(std::string_view state) override {
    if (!is_valid_node_state(state)) {
      throw store_error("node state must be \"serving\" or \"draining\", not '" +
                        std::string(state) + "'");
    }
    const auto revision = run(do_set_state(std::string(state)), "set the node state");
    settle(revision);
  }

  void leave() override {
    const auto revision = run(do_leave(), "leave");
    settle(revision);
  }

  // Every live node, from the cache, sorted by name.
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
    result.kind = "etcd";
    result.endpoints = endpoints_;
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

  // ---- for tests and tools --------------------------------------------------------------

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

  const etcd_options& options() const noexcept { return options_; }

 private:
  using json = nlohmann::json;
  template <class T>
  using awaitable = boost::asio::awaitable<T>;

  struct registration {
    std::int64_t revision = 0;
    std::int64_t lease = 0;
  };

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
    if (stopping()) {
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

  // Turns a failed call into store_error.
  template <class T>
  T value_or_throw(etcd::gateway_result<T> result, std::string_view what) {
    if (etcd::failed(result)) {
      const auto& error = std::get<1>(result);
      throw store_error("cannot " + std::string(what) + ": " + one_line(error.message));
    }
    return std::get<0>(std::move(result));
  }

  static std::string one_line(std::string text) {
    for (auto& c : text) {
      if (c == '\n' || c == '\r') {
        c = ' ';
      }
    }
    return text;
  }

  template <class Parse>
  awaitable<std::invoke_result_t<Parse, std::string_view>> call(std::string_view path,
                                                                std::string body, Parse parse) {
    using result = std::invoke_result_t<Parse, std::string_view>;
    auto answer = co_await client_.call(path, std::move(body));
    if (etcd::failed(answer)) {
      co_return result(std::get<1>(std::move(answer)));
    }
    co_return parse(std::get<0>(answer));
  }

  awaitable<std::int64_t> put(std::string key, std::string value) {
    auto answer =
        co_await call(etcd::paths::put, etcd::put_request(key, value), etcd::parse_empty_response);
    co_return value_or_throw(std::move(answer), "write " + key).revision;
  }

  awaitable<guarded_outcome> guarded_put(std::string txn) {
    auto answer = co_await call(etcd::paths::txn, std::move(txn), etcd::parse_txn_response);
    const auto txn_result = value_or_throw(std::move(answer), "write to etcd");
    co_return guarded_outcome{txn_result.succeeded, txn_result.revision};
  }

  awaitable<guarded_outcome> remove_key(std::string key) {
    auto answer = co_await call(etcd::paths::delete_range, etcd::delete_range_request(key),
                                etcd::parse_delete_response);
    const auto deleted = value_or_throw(std::move(answer), "delete " + key);
    co_return guarded_outcome{deleted.deleted > 0, deleted.revision};
  }

  // After a write at `revision`: wait until the cache has it and watchers have seen it,
  // if the watch is connected (otherwise its event comes when the watch is back).
  void settle(std::int64_t revision) {
    if (revision <= 0) {
      return;
    }
    std::uint64_t sequence = 0;
    {
      std::unique_lock lock(mutex_);
      if (!connected_) {
        return;
      }
      if (!changed_.wait_for(lock, options_.request_timeout,
                             [&] { return revision_ >= revision || !connected_; })) {
        logger_->debug("etcd_store: revision {} not seen on the watch within {} ms", revision,
                       options_.request_timeout.count());
      }
      sequence = published_;
    }
    hub_->deliver_through(sequence);
  }

  // ---- following etcd: list, then watch -------------------------------------------------

  std::chrono::milliseconds next_backoff(int failures) {
    auto delay = options_.backoff_initial * (1LL << std::min(failures, 16));
    delay = std::min<std::chrono::milliseconds>(delay, options_.backoff_max);
    std::uniform_int_distribution<long long> jitter(delay.count() / 2, delay.count());
    return std::chrono::milliseconds(jitter(random_));
  }

  // Sleeps on the retry timer; false if the store is stopping.
  awaitable<bool> sleep(std::chrono::milliseconds delay) {
    if (stopping()) {
      co_return false;
    }
    retry_timer_.expires_after(delay);
    auto [error] = co_await retry_timer_.async_wait(etcd::detail::nothrow_awaitable);
    (void)error;
    co_return !stopping();
  }

  bool stopping() const {
    std::lock_guard lock(mutex_);
    return stopping_;
  }

  void set_connected(bool connected, std::string error = {}) {
    std::lock_guard lock(mutex_);
    connected_ = connected;
    if (!error.empty()) {
      last_error_ = std::move(error);
    }
    changed_.notify_all();
  }

  struct snapshot {
    std::int64_t revision = 0;
    std::vector<etcd::key_value> kvs;
  };

  // Ranges the whole prefix, page by page, all pages at the first page's revision.
  awaitable<etcd::gateway_result<snapshot>> list_all() {
    using result = etcd::gateway_result<snapshot>;
    snapshot out;
    std::string key = options_.prefix;
    const auto end = etcd::prefix_range_end(options_.prefix);
    for (;;) {
      etcd::range_options range;
      range.range_end = end;
      range.limit = options_.page_size;
      range.revision = out.revision;
      auto page = co_await call(etcd::paths::range, etcd::range_request(key, range),
                                etcd::parse_range_response);
      if (etcd::failed(page)) {
        co_return result(std::get<1>(std::move(page)));
      }
      auto& got = std::get<0>(page);
      if (out.revision == 0) {
        out.revision = got.revision;
      }
      if (got.kvs.empty()) {
        break;
      }
      key = got.kvs.back().key + '\0';
      for (auto& kv : got.kvs) {
        out.kvs.push_back(std::move(kv));
      }
      if (!got.more) {
        break;
      }
    }
    co_return result(std::move(out));
  }

  // Before resuming at revision_ + 1: is the history from there still there? etcd 3.4.23
  // loses a DELETE made at exactly the compaction revision when a watch starts there
  // (etcd #18089), so reading at revision_ itself must still work.
  awaitable<std::optional<etcd::gateway_error>> probe_history(std::int64_t revision) {
    etcd::range_options range;
    range.range_end = etcd::prefix_range_end(options_.prefix);
    range.revision = revision;
    range.limit = 1;
    range.keys_only = true;
    auto answer = co_await call(etcd::paths::range, etcd::range_request(options_.prefix, range),
                                etcd::parse_range_response);
    if (etcd::failed(answer)) {
      co_return std::get<1>(answer);
    }
    co_return std::nullopt;
  }

  static bool history_gone(const etcd::gateway_error& error) {
    return error.code == etcd::grpc_code::out_of_range;  // compacted, or a future revision
  }

  awaitable<void> follow() {
    bool need_list = true;
    int failures = 0;
    bool ever_connected = false;
    while (!stopping()) {
      if (need_list) {
        auto listed = co_await list_all();
        if (etcd::failed(listed)) {
          const auto& error = std::get<1>(listed);
          note_failure("list", error);
          if (!co_await sleep(next_backoff(failures++))) {
            break;
          }
          continue;
        }
        apply_snapshot(std::get<0>(std::move(listed)));
        need_list = false;
      }
      const std::int64_t from = current_revision();
      if (auto problem = co_await probe_history(from)) {
        if (history_gone(*problem)) {
          logger_->warn("etcd_store: history at revision {} is gone ({}); listing again", from,
                        problem->message);
          need_list = true;
          continue;
        }
        note_failure("check the history", *problem);
        if (!co_await sleep(next_backoff(failures++))) {
          break;
        }
        continue;
      }
      etcd::watch_options watch;
      watch.range_end = etcd::prefix_range_end(options_.prefix);
      watch.start_revision = from + 1;
      watch.prev_kv = true;
      watch.progress_notify = true;
      auto opened = co_await client_.open_watch(etcd::watch_create_request(options_.prefix, watch));
      if (etcd::failed(opened)) {
        note_failure("watch", std::get<1>(opened));
        if (!co_await sleep(next_backoff(failures++))) {
          break;
        }
        continue;
      }
      stream_ = std::move(std::get<0>(opened));
      if (stopping()) {
        break;
      }
      const auto ended = co_await read_stream(*stream_, ever_connected, failures);
      const auto endpoint = stream_->endpoint_index();
      stream_.reset();
      if (ended == stream_end::compacted) {
        need_list = true;
        continue;
      }
      set_connected(false);
      client_.advance(endpoint);  // the next watch tries another member first
      if (!co_await sleep(next_backoff(failures++))) {
        break;
      }
    }
    set_connected(false);
  }

  enum class stream_end { broken, compacted };

  awaitable<stream_end> read_stream(etcd::watch_stream& stream, bool& ever_connected,
                                    int& failures) {
    for (;;) {
      auto next = co_await stream.next(options_.watch_idle_timeout);
      if (etcd::failed(next)) {
        note_failure("watch", std::get<1>(next));
        co_return stream_end::broken;
      }
      auto& line = std::get<0>(next);
      if (!line) {
        note_failure("watch", {etcd::grpc_code::unavailable, "the watch stream ended"});
        co_return stream_end::broken;
      }
      auto parsed = etcd::parse_watch_response(*line);
      if (etcd::failed(parsed)) {
        const auto& error = std::get<1>(parsed);
        if (etcd::detail::is_token_problem(error)) {
          client_.forget_token();
        }
        note_failure("watch", error);
        co_return stream_end::broken;
      }
      auto& message = std::get<0>(parsed);
      if (message.canceled) {
        if (message.compact_revision > 0) {
          logger_->warn(
              "etcd_store: history compacted up to revision {} past revision {}; listing again",
              message.compact_revision, current_revision());
          co_return stream_end::compacted;
        }
        note_failure("watch", {etcd::grpc_code::unavailable,
                               "the watch was canceled: " + message.cancel_reason});
        co_return stream_end::broken;
      }
      if (message.created) {
        if (message.revision != 0 && message.revision < current_revision()) {
          logger_->warn("etcd_store: etcd is at revision {}, behind revision {}; listing again",
                        message.revision, current_revision());
          co_return stream_end::compacted;
        }
        failures = 0;
        {
          std::lock_guard lock(mutex_);
          if (ever_connected) {
            ++reconnects_;
          }
          connected_ = true;
          last_error_.clear();
          changed_.notify_all();
        }
        if (ever_connected) {
          logger_->info("etcd_store: watching {} again from revision {} on {}", options_.prefix,
                        current_revision() + 1, stream.endpoint());
        }
        ever_connected = true;
        continue;
      }
      if (message.events.empty()) {
        if (message.is_progress()) {  // a periodic notification: nothing below it is pending
          advance_revision(message.revision);
        }
        continue;
      }
      apply_events(message.events);
    }
  }

  void note_failure(std::string_view doing, const etcd::gateway_error& error) {
    const auto text = std::string(doing) + ": " + one_line(error.message);
    bool was_connected = false;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) {
        return;  // the store closed the connection itself
      }
      was_connected = connected_;
      connected_ = false;
      last_error_ = text;
      changed_.notify_all();
    }
    if (was_connected) {
      logger_->warn("etcd_store: lost etcd ({}); serving the last known state", text);
    } else {
      logger_->debug("etcd_store: {}", text);
    }
  }

  std::int64_t current_revision() const {
    std::lock_guard lock(mutex_);
    return revision_;
  }

  void advance_revision(std::int64_t revision) {
    std::lock_guard lock(mutex_);
    if (revision > revision_) {
      revision_ = revision;
      changed_.notify_all();
    }
  }

  // ---- the cache ----------------------------------------------------------------------
  // Everything below runs under mutex_, on the store's thread; events are published to
  // the hub in the order they are applied.

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
  void note_invalid(const etcd::key_value& kv, const std::string& reason) {
    auto [it, added] = invalid_.try_emplace(kv.key, kv.mod_revision);
    if (!added && it->second == kv.mod_revision) {
      return;
    }
    it->second = kv.mod_revision;
    ++invalid_entries_;
    logger_->error("etcd_store: skipping {} (revision {}): {}", kv.key, kv.mod_revision, reason);
  }

  // Applies the value `kv` holds now (nullopt: deleted) at `revision`.
  void apply_locked(const std::string& key, const etcd::key_value* kv, std::int64_t revision) {
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

  void apply_events(const std::vector<etcd::watch_event>& events) {
    std::lock_guard lock(mutex_);
    last_event_ = std::chrono::steady_clock::now();
    std::int64_t highest = revision_;
    for (const auto& event : events) {
      const auto revision = event.kv.mod_revision;
      if (revision <= revision_) {
        continue;  // already applied (a replay after a reconnect)
      }
      const bool removed = event.type == etcd::watch_event::kind::remove;
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

  // Delivers events nobody waits for (changes made by other clients of etcd).
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

  // ---- membership, on the store's thread --------------------------------------------------

  awaitable<std::int64_t> do_join(node_record node) {
    if (member_) {
      throw store_error("cannot join as node '" + node.name + "': this store already joined as '" +
                        member_->name + "'");
    }
    member_ = node;  // claimed now, so a concurrent join is refused
    const auto membership = ++membership_;
    std::optional<registration> registered;
    std::optional<store_error> failure;
    try {
      registered = co_await register_node(node);
    } catch (const store_error& e) {
      failure = e;
    }
    if (failure) {
      if (membership_ == membership) {
        member_.reset();
      }
      throw *failure;
    }
    lease_ = registered->lease;
    boost::asio::co_spawn(io_, keep_alive(membership), boost::asio::detached);
    co_return registered->revision;
  }

  // Grants a lease and creates the node's key on it; throws store_error if a live node
  // holds the name.
  awaitable<registration> register_node(node_record node) {
    auto granted = co_await call(etcd::paths::lease_grant,
                                 etcd::lease_grant_request(options_.lease_ttl.count()),
                                 etcd::parse_lease_response);
    const auto lease = value_or_throw(std::move(granted), "join as node '" + node.name + "'");
    if (lease.ttl <= 0 || lease.id == 0) {
      throw store_error("cannot join as node '" + node.name + "': etcd granted no lease");
    }
    const auto key = node_key(options_.prefix, node.name);
    auto created = co_await call(etcd::paths::txn,
                                 etcd::create_if_absent_request(key, to_json(node), lease.id),
                                 etcd::parse_txn_response);
    if (etcd::failed(created) || !std::get<0>(created).succeeded) {
      co_await revoke(lease.id);
      if (etcd::failed(created)) {
        throw store_error("cannot join as node '" + node.name +
                          "': " + one_line(std::get<1>(created).message));
      }
      const auto& holder = std::get<0>(created).kvs;
      throw store_error("cannot join as node '" + node.name +
                        "': a live node of that name exists (" + key + " is held by lease " +
                        (holder.empty() ? std::string("?") : std::to_string(holder[0].lease)) +
                        ")");
    }
    logger_->info("etcd_store: joined as node '{}' on lease {} (TTL {} s)", node.name, lease.id,
                  lease.ttl);
    co_return registration{std::get<0>(created).revision, lease.id};
  }

  awaitable<etcd::gateway_result<etcd::empty_response>> revoke(std::int64_t lease) {
    co_return co_await call(etcd::paths::lease_revoke, etcd::lease_revoke_request(lease),
                            etcd::parse_empty_response);
  }

  // After a lost lease: registers again, unless the membership ended meanwhile.
  awaitable<std::int64_t> register_again(std::uint64_t membership) {
    auto registered = co_await register_node(*member_);
    if (membership_ != membership || !member_) {
      co_await revoke(registered.lease);  // left while registering
      co_return 0;
    }
    lease_ = registered.lease;
    co_return registered.revision;
  }

  // Keeps the lease alive every TTL/3; registers again when etcd says the lease is gone.
  awaitable<void> keep_alive(std::uint64_t membership) {
    const auto period =
        std::chrono::duration_cast<std::chrono::milliseconds>(options_.lease_ttl) / 3;
    const auto retry = std::max(period / 3, std::chrono::milliseconds(200));
    auto delay = period;
    bool failing = false;
    while (!stopping() && membership_ == membership) {
      keepalive_timer_.expires_after(delay);
      auto [waited] = co_await keepalive_timer_.async_wait(etcd::detail::nothrow_awaitable);
      (void)waited;
      if (stopping() || membership_ != membership || !member_) {
        break;
      }
      const auto lease = lease_;
      auto answer = co_await call(etcd::paths::lease_keepalive,
                                  etcd::lease_keepalive_request(lease), etcd::parse_lease_response);
      if (membership_ != membership || !member_) {
        break;
      }
      if (etcd::failed(answer)) {
        // Once per outage at warn level, then quietly: etcd may stay away a while.
        logger_->log(failing ? spdlog::level::debug : spdlog::level::warn,
                     "etcd_store: keeping lease {} alive failed: {}", lease,
                     one_line(std::get<1>(answer).message));
        failing = true;
        delay = retry;  // the lease may still be saved: try again sooner
        continue;
      }
      failing = false;
      delay = period;
      if (std::get<0>(answer).ttl > 0 || lease != lease_) {
        continue;
      }
      logger_->warn("etcd_store: lease {} of node '{}' is gone; registering again", lease,
                    member_->name);
      try {
        co_await register_again(membership);
      } catch (const store_error& e) {
        logger_->error("etcd_store: {}", e.what());
        delay = retry;
      }
    }
  }

  awaitable<std::int64_t> do_set_state(std::string state) {
    if (!member_) {
      throw store_error("cannot set the node state: this store has not joined");
    }
    member_->state = state;
    const auto membership = membership_;
    const auto key = node_key(options_.prefix, member_->name);
    auto answer =
        co_await call(etcd::paths::txn, etcd::put_if_lease_request(key, to_json(*member_), lease_),
                      etcd::parse_txn_response);
    const auto outcome = value_or_throw(std::move(answer), "set the node state");
    if (outcome.succeeded || membership_ != membership || !member_) {
      co_return outcome.revision;
    }
    logger_->warn("etcd_store: node '{}' no longer holds its key; registering again",
                  member_->name);
    co_return co_await register_again(membership);
  }

  awaitable<std::int64_t> do_leave() {
    if (!member_) {
      co_return 0;
    }
    const auto lease = lease_;
    const auto name = member_->name;
    member_.reset();
    lease_ = 0;
    ++membership_;
    keepalive_timer_.cancel();
    auto answer = co_await revoke(lease);
    if (etcd::failed(answer) && std::get<1>(answer).code == etcd::grpc_code::not_found) {
      co_return 0;  // the lease was already gone, and the key with it
    }
    const auto revoked = value_or_throw(std::move(answer), "leave as node '" + name + "'");
    logger_->info("etcd_store: node '{}' left (lease {} revoked)", name, lease);
    co_return revoked.revision;
  }

  // ---- shutdown -------------------------------------------------------------------------

  void stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) {
        return;
      }
      stopping_ = true;
      delivery_wanted_.notify_all();
      changed_.notify_all();
    }
    boost::asio::post(io_, [this] {
      retry_timer_.cancel();
      keepalive_timer_.cancel();
      ++membership_;
      if (stream_) {
        stream_->close();
      }
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
  const std::shared_ptr<spdlog::logger> logger_;
  const std::string functions_prefix_;
  const std::string nodes_prefix_;
  std::vector<std::string> endpoints_;

  // The store's thread and what only it touches.
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  etcd::gateway_client client_;
  boost::asio::steady_timer retry_timer_;
  boost::asio::steady_timer keepalive_timer_;
  std::mt19937 random_;
  std::unique_ptr<etcd::watch_stream> stream_;
  std::optional<node_record> member_;  // the node this store joined as
  std::int64_t lease_ = 0;
  std::uint64_t membership_ = 0;  // bumped on join and leave: ends the old keep-alive loop

  // The cache, shared with callers, under mutex_.
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
  std::shared_ptr<detail::watch_hub> hub_ = std::make_shared<detail::watch_hub>();

  std::promise<void> io_done_;
  std::future<void> io_done_future_ = io_done_.get_future();
  std::thread io_thread_;
  std::thread delivery_thread_;
};

}  // namespace fezz
