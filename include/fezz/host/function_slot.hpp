#pragma once

// One function's load, run, unload: its code, its live instance, and the
// leases that calls hold on that instance.
//
// A slot's state and its count of in-flight leases share one atomic word, so
// taking a lease on a loaded function is one atomic add and giving it back one
// atomic subtract: no lock on the request path. Loading and unloading take
// the slot's own mutex.

#include <fezz/context.hpp>
#include <fezz/detail/async.hpp>
#include <fezz/detail/log_limiter.hpp>
#include <fezz/error.hpp>
#include <fezz/function.hpp>
#include <fezz/host/function_metrics.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace fezz::host {

class function_slot;

// Holds one loaded instance in use for one call: while any lease is alive the
// instance is neither unloaded nor replaced.
class function_lease {
 public:
  function_lease() noexcept = default;  // holds nothing
  function_lease(function_lease&& other) noexcept : slot_(std::exchange(other.slot_, nullptr)) {}
  function_lease& operator=(function_lease&& other) noexcept {
    if (this != &other) {
      release();
      slot_ = std::exchange(other.slot_, nullptr);
    }
    return *this;
  }
  function_lease(const function_lease&) = delete;
  function_lease& operator=(const function_lease&) = delete;
  ~function_lease() { release(); }

  explicit operator bool() const noexcept { return slot_ != nullptr; }
  inline detail::function_instance& instance() const noexcept;
  inline function_metrics& metrics() const noexcept;

 private:
  friend class function_slot;
  explicit function_lease(function_slot* slot) noexcept : slot_(slot) {}
  inline void release() noexcept;

  function_slot* slot_ = nullptr;
};

// What /_metrics reports for one function.
struct function_status {
  std::string id;
  // For the slot of one of an entry's versions ("<id>@<version>"): the function's id
  // and the version's name. Otherwise `id` and empty.
  std::string function;
  std::string version;
  bool loaded = false;
  bool loading = false;
  std::uint64_t in_flight = 0;
  std::chrono::steady_clock::duration idle{};  // since the last call ended, when loaded
  std::string last_error;                      // of the last failed load
  const function_metrics* metrics = nullptr;
};

class function_slot : public std::enable_shared_from_this<function_slot> {
 public:
  using clock = std::chrono::steady_clock;

  // `executor` runs loads and unloads; an unload may start from a lease's destructor.
  // `request_log` limits the lines that requests can trigger: failed loads.
  function_slot(function_registration registration, boost::asio::any_io_executor executor,
                std::shared_ptr<spdlog::logger> logger,
                std::shared_ptr<detail::log_limiter> request_log,
                std::shared_ptr<const function_info> info)
      : registration_(std::move(registration)),
        executor_(std::move(executor)),
        logger_(std::move(logger)),
        request_log_(std::move(request_log)),
        info_(std::move(info)) {}
  function_slot(const function_slot&) = delete;
  function_slot& operator=(const function_slot&) = delete;

  const function_registration& registration() const noexcept { return registration_; }
  function_metrics& metrics() noexcept { return metrics_; }

  // A lease on a live instance, or nullopt if none is loaded (or it is
  // closing). Lock-free: the request path's first try.
  std::optional<function_lease> try_acquire() noexcept {
    const auto before = word_.fetch_add(1, std::memory_order_acquire);
    if ((before & (loaded_bit | closing_bit)) == loaded_bit) {
      return function_lease(this);
    }
    release();
    return std::nullopt;
  }

  // A lease, loading the function first if needed. Concurrent callers share
  // one load. Throws fezz::error (503) if the load fails.
  inline boost::asio::awaitable<function_lease> acquire();

  // Sets the configuration the next load uses; a live instance is retired so
  // that the next call loads one with the new configuration.
  void configure(std::shared_ptr<const function_info> info) {
    {
      std::lock_guard lock(mutex_);
      if (info_ == info) {
        return;
      }
      info_ = std::move(info);
    }
    retire();
  }

  // Unloads the instance once its in-flight calls are done (a control-plane
  // update or removal). Returns false if nothing was loaded.
  bool retire() {
    {
      std::lock_guard lock(mutex_);
      if (!loaded()) {
        return false;
      }
      word_.fetch_or(closing_bit, std::memory_order_acq_rel);
    }
    try_start_unload();
    return true;
  }

  // Starts unloading if the instance is loaded, open, without leases and idle
  // for at least `idle_timeout`, all claimed in one step. True if it started.
  bool unload_if_idle(clock::duration idle_timeout) {
    auto word = word_.load(std::memory_order_acquire);
    const auto now = clock::now().time_since_epoch().count();
    if (word != loaded_bit ||
        now - last_used_.load(std::memory_order_relaxed) < idle_timeout.count()) {
      return false;
    }
    if (!word_.compare_exchange_strong(word, word | closing_bit | unloading_bit,
                                       std::memory_order_acq_rel)) {
      return false;
    }
    detail::spawn_later(executor_, unload(shared_from_this()), logger_);
    return true;
  }

  std::uint64_t leases() const noexcept {
    return word_.load(std::memory_order_relaxed) & lease_mask;
  }
  bool loaded() const noexcept { return (word_.load(std::memory_order_acquire) & loaded_bit) != 0; }
  // Loaded or loading: something is left to unload.
  bool busy() const {
    std::lock_guard lock(mutex_);
    return loaded() || loading_;
  }

  function_status status() const {
    function_status s;
    s.id = registration_.static_manifest.id;
    std::lock_guard lock(mutex_);
    if (info_ && info_->manifest.id != s.id) {  // configured as a version (route_publisher)
      s.function = info_->manifest.id;
      s.version = info_->manifest.version;
    } else {
      s.function = s.id;
    }
    s.loaded = loaded();
    s.loading = loading_;
    s.in_flight = leases();
    if (s.loaded) {
      s.idle = clock::now() - clock::time_point(clock::duration(last_used_.load()));
    }
    s.last_error = last_error_;
    s.metrics = &metrics_;
    return s;
  }

 private:
  friend class function_lease;

  // A caller waiting for a load or unload to end, resumed on its own executor.
  struct waiter {
    boost::asio::any_io_executor executor;
    boost::asio::any_completion_handler<void(std::string)> handler;
  };

  // The state bits of `word_`; the low bits count leases.
  static constexpr std::uint64_t loaded_bit = 1ULL << 63;     // instance is live
  static constexpr std::uint64_t closing_bit = 1ULL << 62;    // no new leases
  static constexpr std::uint64_t unloading_bit = 1ULL << 61;  // on_unload claimed
  static constexpr std::uint64_t lease_mask = (1ULL << 48) - 1;

  void release() noexcept {
    last_used_.store(clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    const auto before = word_.fetch_sub(1, std::memory_order_acq_rel);
    if ((before & closing_bit) != 0 && (before & lease_mask) == 1) {
      try_start_unload();
    }
  }

  // Exactly one caller wins the unloading bit, and only once the last lease is gone.
  void try_start_unload() noexcept {
    auto word = word_.load(std::memory_order_acquire);
    for (;;) {
      if ((word & closing_bit) == 0 || (word & unloading_bit) != 0 || (word & lease_mask) != 0) {
        return;
      }
      if (word_.compare_exchange_weak(word, word | unloading_bit, std::memory_order_acq_rel)) {
        break;
      }
    }
    try {
      detail::spawn_later(executor_, unload(shared_from_this()), logger_);
    } catch (...) {
      // Only allocation can fail here; the slot stays closing and the next
      // unload_all or retire reports it.
      logger_->critical("could not start unloading '{}'", registration_.static_manifest.id);
    }
  }

  static void wake(std::vector<waiter> waiters, const std::string& error) {
    for (auto& w : waiters) {
      boost::asio::post(w.executor, [handler = std::move(w.handler), error]() mutable {
        std::move(handler)(error);
      });
    }
  }

  // Waits for the slot's next transition; mutex_ is held on entry and released.
  template <class CompletionToken>
  auto async_wait_transition(std::unique_lock<std::mutex>& lock, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(std::string)>(
        [this, &lock](auto handler) {
          auto executor = boost::asio::get_associated_executor(handler, executor_);
          waiters_.push_back({std::move(executor), std::move(handler)});
          // Forget the lock before unlocking: once unlocked, a waker may resume
          // this coroutine on another thread, which must not see the lock change.
          lock.release()->unlock();
        },
        token);
  }

  // Each holds its own slot: it may run after every caller has let go.
  inline boost::asio::awaitable<void> load(std::shared_ptr<function_slot> self);
  inline boost::asio::awaitable<void> unload(std::shared_ptr<function_slot> self);

  const function_registration registration_;
  const boost::asio::any_io_executor executor_;
  const std::shared_ptr<spdlog::logger> logger_;
  const std::shared_ptr<detail::log_limiter> request_log_;
  function_metrics metrics_;
  std::atomic<std::uint64_t> word_{0};
  std::atomic<clock::rep> last_used_{0};

  // Guarded by mutex_: everything below.
  mutable std::mutex mutex_;
  std::unique_ptr<detail::function_instance> instance_;  // set while loaded_bit is set
  std::shared_ptr<const function_info> info_;            // what the next load uses
  std::shared_ptr<const function_info> loaded_info_;     // what the live instance loaded with
  bool loading_ = false;
  std::string last_error_;
  std::vector<waiter> waiters_;
};

inline detail::function_instance& function_lease::instance() const noexcept {
  return *slot_->instance_;
}

inline function_metrics& function_lease::metrics() const noexcept {
  return slot_->metrics_;
}

inline void function_lease::release() noexcept {
  if (slot_ != nullptr) {
    std::exchange(slot_, nullptr)->release();
  }
}

inline boost::asio::awaitable<function_lease> function_slot::acquire() {
  for (;;) {
    std::unique_lock lock(mutex_);
    if (auto lease = try_acquire()) {
      co_return std::move(*lease);
    }
    if (!loaded() && !loading_) {
      loading_ = true;
      detail::spawn_later(executor_, load(shared_from_this()), logger_);
    }
    // Loading, or unloading before a reload: wait for that to finish.
    const std::string error = co_await async_wait_transition(lock, boost::asio::use_awaitable);
    if (!error.empty()) {
      throw fezz::error(boost::beast::http::status::service_unavailable, error);
    }
  }
}

inline boost::asio::awaitable<void> function_slot::load(std::shared_ptr<function_slot> /*self*/) {
  std::shared_ptr<const function_info> info;
  {
    std::lock_guard lock(mutex_);
    info = info_;
  }
  const auto started = clock::now();
  std::unique_ptr<detail::function_instance> instance;
  std::string error;
  try {
    instance = info->module_code ? info->module_code() : registration_.make();
    if (instance->has_on_load()) {
      context ctx(*info, started + info->manifest.timeout);
      if (!co_await detail::complete_by(instance->on_load(ctx), ctx.deadline())) {
        error = "on_load timed out after " + std::to_string(info->manifest.timeout.count()) + " s";
      }
    }
  } catch (...) {
    error = detail::describe_current_exception();
  }
  const auto took = std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - started);

  std::vector<waiter> waiters;
  bool stale = false;
  {
    std::lock_guard lock(mutex_);
    loading_ = false;
    if (error.empty()) {
      instance_ = std::move(instance);
      loaded_info_ = info;
      last_error_.clear();
      last_used_.store(clock::now().time_since_epoch().count(), std::memory_order_relaxed);
      word_.fetch_or(loaded_bit, std::memory_order_release);
      function_metrics::bump(metrics_.loads);
      metrics_.last_load_ns.store(static_cast<std::uint64_t>(took.count()),
                                  std::memory_order_relaxed);
      metrics_.total_load_ns.fetch_add(static_cast<std::uint64_t>(took.count()),
                                       std::memory_order_relaxed);
      stale = info_ != info;
    } else {
      last_error_ = "function '" + info->manifest.id + "' failed to load: " + error;
      function_metrics::bump(metrics_.load_failures);
      error = last_error_;
    }
    waiters = std::move(waiters_);
    waiters_.clear();
  }
  if (error.empty()) {
    logger_->info("loaded '{}' in {} us", info->manifest.id, took.count() / 1000);
  } else {
    request_log_->log(*logger_, spdlog::level::warn, "{}", error);
  }
  // A failed instance is destroyed here, outside the lock, never made routable.
  instance.reset();
  wake(std::move(waiters), error);
  if (stale) {
    retire();  // configured again while loading: the next call loads afresh
  }
}

inline boost::asio::awaitable<void> function_slot::unload(std::shared_ptr<function_slot> /*self*/) {
  std::unique_ptr<detail::function_instance> instance;
  std::shared_ptr<const function_info> info;
  {
    std::lock_guard lock(mutex_);
    instance = std::move(instance_);
    info = std::move(loaded_info_);
  }
  if (instance->has_on_unload()) {
    try {
      context ctx(*info, clock::now() + info->manifest.timeout);
      if (!co_await detail::complete_by(instance->on_unload(ctx), ctx.deadline())) {
        logger_->warn("on_unload of '{}' timed out", info->manifest.id);
      }
    } catch (...) {
      logger_->warn("on_unload of '{}' failed: {}", info->manifest.id,
                    detail::describe_current_exception());
    }
  }
  instance.reset();
  std::vector<waiter> waiters;
  {
    std::lock_guard lock(mutex_);
    word_.fetch_and(~(loaded_bit | closing_bit | unloading_bit), std::memory_order_release);
    function_metrics::bump(metrics_.unloads);
    waiters = std::move(waiters_);
    waiters_.clear();
  }
  logger_->info("unloaded '{}'", info->manifest.id);
  wake(std::move(waiters), {});
}

}  // namespace fezz::host
