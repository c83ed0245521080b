#pragma once

// cache_follower: keeps a store_cache following etcd, on the store's thread. It ranges the
// whole prefix (paged, every page at the first page's revision), then watches it from the
// next revision with prev_kv and progress notifications, asking for a leader.
//   - After a disconnect it resumes the watch from the last revision applied + 1, having
//     first read the prefix at that revision: if etcd has compacted it away, or cancels
//     the watch with compact_revision, or went back in revisions, it lists again and the
//     cache delivers the difference.
//   - It reconnects with exponential backoff and jitter, trying the next endpoint first.

#include <fezz/detail/async.hpp>
#include <fezz/etcd/gateway_client.hpp>
#include <fezz/etcd/gateway_requests.hpp>
#include <fezz/etcd/gateway_responses.hpp>
#include <fezz/etcd/store_cache.hpp>
#include <fezz/etcd/store_calls.hpp>
#include <fezz/etcd/watch_stream.hpp>
#include <fezz/store_format.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>

namespace fezz::etcd {

struct follower_options {
  std::string prefix;                               // what to list and watch
  std::int64_t page_size = 500;                     // keys per range request while listing
  std::chrono::milliseconds backoff_initial{0};     // reconnecting: first delay, doubled...
  std::chrono::milliseconds backoff_max{0};         // ...up to this, with jitter
  std::chrono::milliseconds watch_idle_timeout{0};  // silent this long: reconnect
  std::shared_ptr<spdlog::logger> logger;
};

class cache_follower {
 public:
  cache_follower(boost::asio::any_io_executor executor, gateway_client& client, store_cache& cache,
                 follower_options options)
      : options_(std::move(options)),
        logger_(options_.logger),
        client_(client),
        cache_(cache),
        retry_timer_(std::move(executor)),
        random_(std::random_device{}()) {}

  cache_follower(const cache_follower&) = delete;
  cache_follower& operator=(const cache_follower&) = delete;

  // Lists, then watches, until the store stops.
  boost::asio::awaitable<void> run() {
    bool need_list = true;
    int failures = 0;
    bool ever_connected = false;
    while (!cache_.stopping()) {
      if (need_list) {
        auto listed = co_await list_all();
        if (failed(listed)) {
          const auto& error = std::get<1>(listed);
          note_failure("list", error);
          if (!co_await sleep(next_backoff(failures++))) {
            break;
          }
          continue;
        }
        cache_.apply_snapshot(std::get<0>(std::move(listed)));
        need_list = false;
      }
      const std::int64_t from = cache_.current_revision();
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
      watch_options watch;
      watch.range_end = prefix_range_end(options_.prefix);
      watch.start_revision = from + 1;
      watch.prev_kv = true;
      watch.progress_notify = true;
      auto opened = co_await client_.open_watch(watch_create_request(followed_from(), watch));
      if (failed(opened)) {
        note_failure("watch", std::get<1>(opened));
        if (!co_await sleep(next_backoff(failures++))) {
          break;
        }
        continue;
      }
      stream_ = std::move(std::get<0>(opened));
      if (cache_.stopping()) {
        break;
      }
      const auto ended = co_await read_stream(*stream_, ever_connected, failures);
      const auto endpoint = stream_->endpoint_index();
      stream_.reset();
      if (ended == stream_end::compacted) {
        need_list = true;
        continue;
      }
      cache_.set_connected(false);
      client_.advance(endpoint);  // the next watch tries another member first
      if (!co_await sleep(next_backoff(failures++))) {
        break;
      }
    }
    cache_.set_connected(false);
  }

  // On the store's thread, once the cache is stopping: ends a sleep and the watch.
  void stop() {
    retry_timer_.cancel();
    if (stream_) {
      stream_->close();
    }
  }

 private:
  template <class T>
  using awaitable = boost::asio::awaitable<T>;

  std::chrono::milliseconds next_backoff(int failures) {
    auto delay = options_.backoff_initial * (1LL << std::min(failures, 16));
    delay = std::min<std::chrono::milliseconds>(delay, options_.backoff_max);
    std::uniform_int_distribution<long long> jitter(delay.count() / 2, delay.count());
    return std::chrono::milliseconds(jitter(random_));
  }

  // Sleeps on the retry timer; false if the store is stopping.
  awaitable<bool> sleep(std::chrono::milliseconds delay) {
    if (cache_.stopping()) {
      co_return false;
    }
    retry_timer_.expires_after(delay);
    auto [error] = co_await retry_timer_.async_wait(fezz::detail::nothrow_awaitable);
    (void)error;
    co_return !cache_.stopping();
  }

  // Where the followed keys start: functions/ and nodes/ to the prefix's end, and not
  // the module code under code/, which sorts before them (store_format.hpp).
  std::string followed_from() const { return functions_prefix(options_.prefix); }

  // Ranges the followed keys, page by page, all pages at the first page's revision.
  awaitable<gateway_result<snapshot>> list_all() {
    using result = gateway_result<snapshot>;
    snapshot out;
    std::string key = followed_from();
    const auto end = prefix_range_end(options_.prefix);
    for (;;) {
      range_options range;
      range.range_end = end;
      range.limit = options_.page_size;
      range.revision = out.revision;
      auto page =
          co_await call(client_, paths::range, range_request(key, range), parse_range_response);
      if (failed(page)) {
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

  // Before resuming at revision + 1: is the history from there still there? etcd 3.4.23
  // loses a DELETE made at exactly the compaction revision when a watch starts there
  // (etcd #18089), so reading at `revision` itself must still work.
  awaitable<std::optional<gateway_error>> probe_history(std::int64_t revision) {
    range_options range;
    range.range_end = prefix_range_end(options_.prefix);
    range.revision = revision;
    range.limit = 1;
    range.keys_only = true;
    auto answer = co_await call(client_, paths::range, range_request(followed_from(), range),
                                parse_range_response);
    if (failed(answer)) {
      co_return std::get<1>(answer);
    }
    co_return std::nullopt;
  }

  static bool history_gone(const gateway_error& error) {
    return error.code == grpc_code::out_of_range;  // compacted, or a future revision
  }

  enum class stream_end { broken, compacted };

  awaitable<stream_end> read_stream(watch_stream& stream, bool& ever_connected, int& failures) {
    for (;;) {
      auto next = co_await stream.next(options_.watch_idle_timeout);
      if (failed(next)) {
        note_failure("watch", std::get<1>(next));
        co_return stream_end::broken;
      }
      auto& line = std::get<0>(next);
      if (!line) {
        note_failure("watch", {grpc_code::unavailable, "the watch stream ended"});
        co_return stream_end::broken;
      }
      auto parsed = parse_watch_response(*line);
      if (failed(parsed)) {
        const auto& error = std::get<1>(parsed);
        if (detail::is_token_problem(error)) {
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
              message.compact_revision, cache_.current_revision());
          co_return stream_end::compacted;
        }
        note_failure("watch",
                     {grpc_code::unavailable, "the watch was canceled: " + message.cancel_reason});
        co_return stream_end::broken;
      }
      if (message.created) {
        if (message.revision != 0 && message.revision < cache_.current_revision()) {
          logger_->warn("etcd_store: etcd is at revision {}, behind revision {}; listing again",
                        message.revision, cache_.current_revision());
          co_return stream_end::compacted;
        }
        failures = 0;
        cache_.set_watching(ever_connected);
        if (ever_connected) {
          logger_->info("etcd_store: watching {} again from revision {} on {}", options_.prefix,
                        cache_.current_revision() + 1, stream.endpoint());
        }
        ever_connected = true;
        continue;
      }
      if (message.events.empty()) {
        if (message.is_progress()) {  // a periodic notification: nothing below it is pending
          cache_.advance_revision(message.revision);
        }
        continue;
      }
      cache_.apply_events(message.events);
    }
  }

  void note_failure(std::string_view doing, const gateway_error& error) {
    const auto text = std::string(doing) + ": " + one_line(error.message);
    const auto was_connected = cache_.set_failed(text);
    if (!was_connected) {
      return;  // the store closed the connection itself
    }
    if (*was_connected) {
      logger_->warn("etcd_store: lost etcd ({}); serving the last known state", text);
    } else {
      logger_->debug("etcd_store: {}", text);
    }
  }

  const follower_options options_;
  const std::shared_ptr<spdlog::logger> logger_;
  gateway_client& client_;
  store_cache& cache_;
  boost::asio::steady_timer retry_timer_;
  std::mt19937 random_;
  std::unique_ptr<watch_stream> stream_;
};

}  // namespace fezz::etcd
