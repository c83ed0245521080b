#pragma once

// fezz::function_registry: load, run, unload. It holds factories (code), and
// makes an instance only when a request needs one.
//
// Each function has one slot. A slot's state and its count of in-flight
// leases share one atomic word, so taking a lease on a loaded function is one
// atomic add and giving it back one atomic subtract: no lock on the request
// path. Loading and unloading take the slot's own mutex.

#include <fezz/context.hpp>
#include <fezz/detail/complete_by.hpp>
#include <fezz/error.hpp>
#include <fezz/function.hpp>
#include <fezz/function_metrics.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fezz {

class function_registry;

namespace detail {

class function_slot : public std::enable_shared_from_this<function_slot> {
 public:
  using clock = std::chrono::steady_clock;
  // A caller waiting for a load or unload to end, resumed on its own executor.
  struct waiter {
    boost::asio::any_io_executor executor;
    boost::asio::any_completion_handler<void(std::string)> handler;
  };

  // The state bits of `word`; the low bits count leases.
  static constexpr std::uint64_t loaded_bit = 1ULL << 63;     // instance is live
  static constexpr std::uint64_t closing_bit = 1ULL << 62;    // no new leases
  static constexpr std::uint64_t unloading_bit = 1ULL << 61;  // on_unload claimed
  static constexpr std::uint64_t lease_mask = (1ULL << 48) - 1;

  function_slot(function_registration r, boost::asio::any_io_executor ex,
                std::shared_ptr<spdlog::logger> log)
      : registration(std::move(r)), executor(std::move(ex)), logger(std::move(log)) {}

  const function_registration registration;
  // Where loads and unloads run; an unload may start from a lease's destructor.
  const boost::asio::any_io_executor executor;
  const std::shared_ptr<spdlog::logger> logger;
  function_metrics metrics;
  std::atomic<std::uint64_t> word{0};
  std::atomic<clock::rep> last_used{0};

  // Guarded by mutex: everything below.
  std::mutex mutex;
  std::unique_ptr<function_instance> instance;       // set while loaded_bit is set
  std::shared_ptr<const function_info> info;         // what the next load uses
  std::shared_ptr<const function_info> loaded_info;  // what the live instance loaded with
  bool loading = false;
  std::string last_error;
  std::vector<waiter> waiters;

  std::uint64_t leases() const noexcept {
    return word.load(std::memory_order_relaxed) & lease_mask;
  }
  bool loaded() const noexcept { return (word.load(std::memory_order_acquire) & loaded_bit) != 0; }
};

}  // namespace detail

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
  detail::function_instance& instance() const noexcept { return *slot_->instance; }
  function_metrics& metrics() const noexcept { return slot_->metrics; }

 private:
  friend class function_registry;
  explicit function_lease(detail::function_slot* slot) noexcept : slot_(slot) {}
  inline void release() noexcept;

  detail::function_slot* slot_ = nullptr;
};

// What /_metrics reports for one function.
struct function_status {
  std::string id;
  bool loaded = false;
  bool loading = false;
  std::uint64_t in_flight = 0;
  std::chrono::steady_clock::duration idle{};  // since the last call ended, when loaded
  std::string last_error;                      // of the last failed load
  const function_metrics* metrics = nullptr;
};

class function_registry {
 public:
  using clock = std::chrono::steady_clock;
  using handle = std::shared_ptr<detail::function_slot>;

  explicit function_registry(boost::asio::any_io_executor executor,
                             std::shared_ptr<spdlog::logger> logger = spdlog::default_logger())
      : executor_(std::move(executor)), logger_(std::move(logger)) {}
  function_registry(const function_registry&) = delete;
  function_registry& operator=(const function_registry&) = delete;
  // Instances still loaded here are destroyed without on_unload: call
  // unload_all() first for an orderly stop.
  ~function_registry() = default;

  // Adds code for an id. Throws std::invalid_argument if the id has code already.
  handle add(function_registration registration, std::shared_ptr<const function_info> info);
  handle find(std::string_view id) const;
  std::vector<handle> all() const;

  // Sets the configuration the next load uses; a live instance is retired so
  // that the next call loads one with the new configuration.
  void configure(const handle& slot, std::shared_ptr<const function_info> info);

  // A lease on a live instance, or nullopt if the slot is not loaded (or is
  // closing). Lock-free: the request path's first try.
  std::optional<function_lease> try_acquire(detail::function_slot& slot) noexcept;

  // A lease, loading the function first if needed. Concurrent callers share
  // one load. Throws fezz::error (503) if the load fails.
  boost::asio::awaitable<function_lease> acquire(handle slot);

  // Unloads the instance once its in-flight calls are done (control-plane
  // update or removal). Returns false if nothing was loaded.
  bool retire(const handle& slot);

  // Starts unloading every loaded function idle for at least idle_timeout.
  // Returns how many it started.
  std::size_t unload_idle(clock::duration idle_timeout);

  // Retires everything and waits until nothing is loaded or loading, or the
  // deadline passes. Returns true if everything unloaded.
  boost::asio::awaitable<bool> unload_all(clock::time_point deadline);

  std::vector<function_status> status() const;

 private:
  friend class function_lease;
  using slot_type = detail::function_slot;

  static void release(slot_type& slot) noexcept;
  static void try_start_unload(slot_type& slot) noexcept;
  static void wake(std::vector<slot_type::waiter> waiters, const std::string& error);
  void start_load(const handle& slot);  // slot.mutex held
  boost::asio::awaitable<void> load(handle slot);
  static boost::asio::awaitable<void> unload(handle slot);

  // Waits for the slot's next transition; slot.mutex is held on entry and released.
  template <class CompletionToken>
  auto async_wait_transition(slot_type& slot, std::unique_lock<std::mutex>& lock,
                             CompletionToken&& token);

  boost::asio::any_io_executor executor_;
  std::shared_ptr<spdlog::logger> logger_;
  mutable std::mutex slots_mutex_;  // control path only: add, find, all
  std::map<std::string, handle, std::less<>> slots_;
};

}  // namespace fezz

#include <fezz/impl/function_registry.ipp>
