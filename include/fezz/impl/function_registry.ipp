#pragma once

#include <stdexcept>

namespace fezz {

namespace detail {

inline std::string describe_current_exception() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

// co_spawn completion for the registry's own coroutines: they catch what they
// can; anything left is logged rather than thrown out of io_context::run.
struct log_failure {
  std::shared_ptr<spdlog::logger> logger;
  void operator()(const std::exception_ptr& e) const {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (...) {
        logger->error("registry task failed: {}", describe_current_exception());
      }
    }
  }
};

// Starts a registry coroutine later, never inline: callers may hold the
// slot's mutex, which the coroutine takes.
inline void spawn_later(const boost::asio::any_io_executor& executor,
                        boost::asio::awaitable<void> task, std::shared_ptr<spdlog::logger> logger) {
  boost::asio::post(
      executor, [executor, task = std::move(task), logger = std::move(logger)]() mutable {
        boost::asio::co_spawn(executor, std::move(task), log_failure{std::move(logger)});
      });
}

}  // namespace detail

inline void function_lease::release() noexcept {
  if (slot_ != nullptr) {
    function_registry::release(*std::exchange(slot_, nullptr));
  }
}

inline function_registry::handle function_registry::add(function_registration registration,
                                                        std::shared_ptr<const function_info> info) {
  std::lock_guard lock(slots_mutex_);
  const std::string id(registration.static_manifest.id);
  if (slots_.contains(id)) {
    throw std::invalid_argument("function '" + id + "' is already registered");
  }
  auto slot = std::make_shared<slot_type>(std::move(registration), executor_, logger_);
  slot->info = std::move(info);
  slots_.emplace(id, slot);
  return slot;
}

inline function_registry::handle function_registry::find(std::string_view id) const {
  std::lock_guard lock(slots_mutex_);
  const auto it = slots_.find(id);
  return it == slots_.end() ? nullptr : it->second;
}

inline std::vector<function_registry::handle> function_registry::all() const {
  std::lock_guard lock(slots_mutex_);
  std::vector<handle> out;
  out.reserve(slots_.size());
  for (const auto& [id, slot] : slots_) {
    out.push_back(slot);
  }
  return out;
}

inline void function_registry::configure(const handle& slot,
                                         std::shared_ptr<const function_info> info) {
  {
    std::lock_guard lock(slot->mutex);
    if (slot->info == info) {
      return;
    }
    slot->info = std::move(info);
  }
  retire(slot);
}

inline std::optional<function_lease> function_registry::try_acquire(slot_type& slot) noexcept {
  const auto before = slot.word.fetch_add(1, std::memory_order_acquire);
  if ((before & (slot_type::loaded_bit | slot_type::closing_bit)) == slot_type::loaded_bit) {
    return function_lease(&slot);
  }
  release(slot);
  return std::nullopt;
}

inline void function_registry::release(slot_type& slot) noexcept {
  slot.last_used.store(clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  const auto before = slot.word.fetch_sub(1, std::memory_order_acq_rel);
  if ((before & slot_type::closing_bit) != 0 && (before & slot_type::lease_mask) == 1) {
    try_start_unload(slot);
  }
}

// Exactly one caller wins the unloading bit, and only once the last lease is gone.
inline void function_registry::try_start_unload(slot_type& slot) noexcept {
  auto word = slot.word.load(std::memory_order_acquire);
  for (;;) {
    if ((word & slot_type::closing_bit) == 0 || (word & slot_type::unloading_bit) != 0 ||
        (word & slot_type::lease_mask) != 0) {
      return;
    }
    if (slot.word.compare_exchange_weak(word, word | slot_type::unloading_bit,
                                        std::memory_order_acq_rel)) {
      break;
    }
  }
  try {
    detail::spawn_later(slot.executor, unload(slot.shared_from_this()), slot.logger);
  } catch (...) {
    // Only allocation can fail here; the slot stays closing and the next
    // unload_all or retire reports it.
    slot.logger->critical("could not start unloading '{}'", slot.registration.static_manifest.id);
  }
}

inline void function_registry::wake(std::vector<slot_type::waiter> waiters,
                                    const std::string& error) {
  for (auto& waiter : waiters) {
    boost::asio::post(waiter.executor, [handler = std::move(waiter.handler), error]() mutable {
      std::move(handler)(error);
    });
  }
}

template <class CompletionToken>
auto function_registry::async_wait_transition(slot_type& slot, std::unique_lock<std::mutex>& lock,
                                              CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, void(std::string)>(
      [this, &slot, &lock](auto handler) {
        auto executor = boost::asio::get_associated_executor(handler, executor_);
        slot.waiters.push_back({std::move(executor), std::move(handler)});
        // Forget the lock before unlocking: once unlocked, a waker may resume
        // this coroutine on another thread, which must not see the lock change.
        lock.release()->unlock();
      },
      token);
}

inline void function_registry::start_load(const handle& slot) {
  slot->loading = true;
  detail::spawn_later(executor_, load(slot), logger_);
}

inline boost::asio::awaitable<function_lease> function_registry::acquire(handle slot) {
  for (;;) {
    std::unique_lock lock(slot->mutex);
    if (auto lease = try_acquire(*slot)) {
      co_return std::move(*lease);
    }
    if (!slot->loaded() && !slot->loading) {
      start_load(slot);
    }
    // Loading, or unloading before a reload: wait for that to finish.
    const std::string error =
        co_await async_wait_transition(*slot, lock, boost::asio::use_awaitable);
    if (!error.empty()) {
      throw fezz::error(boost::beast::http::status::service_unavailable, error);
    }
  }
}

inline boost::asio::awaitable<void> function_registry::load(handle slot) {
  std::shared_ptr<const function_info> info;
  {
    std::lock_guard lock(slot->mutex);
    info = slot->info;
  }
  const auto started = clock::now();
  std::unique_ptr<detail::function_instance> instance;
  std::string error;
  try {
    instance = slot->registration.make();
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

  std::vector<slot_type::waiter> waiters;
  bool stale = false;
  {
    std::lock_guard lock(slot->mutex);
    slot->loading = false;
    if (error.empty()) {
      slot->instance = std::move(instance);
      slot->loaded_info = info;
      slot->last_error.clear();
      slot->last_used.store(clock::now().time_since_epoch().count(), std::memory_order_relaxed);
      slot->word.fetch_or(slot_type::loaded_bit, std::memory_order_release);
      function_metrics::bump(slot->metrics.loads);
      slot->metrics.last_load_ns.store(static_cast<std::uint64_t>(took.count()),
                                       std::memory_order_relaxed);
      slot->metrics.total_load_ns.fetch_add(static_cast<std::uint64_t>(took.count()),
                                            std::memory_order_relaxed);
      stale = slot->info != info;
    } else {
      slot->last_error = "function '" + info->manifest.id + "' failed to load: " + error;
      function_metrics::bump(slot->metrics.load_failures);
    }
    waiters = std::move(slot->waiters);
    slot->waiters.clear();
    error = error.empty() ? std::string{} : slot->last_error;
  }
  if (error.empty()) {
    logger_->info("loaded '{}' in {} us", info->manifest.id, took.count() / 1000);
  } else {
    logger_->warn("{}", error);
  }
  // A failed instance is destroyed here, outside the lock, never made routable.
  instance.reset();
  wake(std::move(waiters), error);
  if (stale) {
    retire(slot);  // configured again while loading: the next call loads afresh
  }
}

inline boost::asio::awaitable<void> function_registry::unload(handle slot) {
  std::unique_ptr<detail::function_instance> instance;
  std::shared_ptr<const function_info> info;
  {
    std::lock_guard lock(slot->mutex);
    instance = std::move(slot->instance);
    info = std::move(slot->loaded_info);
  }
  if (instance->has_on_unload()) {
    try {
      context ctx(*info, clock::now() + info->manifest.timeout);
      if (!co_await detail::complete_by(instance->on_unload(ctx), ctx.deadline())) {
        slot->logger->warn("on_unload of '{}' timed out", info->manifest.id);
      }
    } catch (...) {
      slot->logger->warn("on_unload of '{}' failed: {}", info->manifest.id,
                         detail::describe_current_exception());
    }
  }
  instance.reset();
  std::vector<slot_type::waiter> waiters;
  {
    std::lock_guard lock(slot->mutex);
    slot->word.fetch_and(
        ~(slot_type::loaded_bit | slot_type::closing_bit | slot_type::unloading_bit),
        std::memory_order_release);
    function_metrics::bump(slot->metrics.unloads);
    waiters = std::move(slot->waiters);
    slot->waiters.clear();
  }
  slot->logger->info("unloaded '{}'", info->manifest.id);
  wake(std::move(waiters), {});
}

inline bool function_registry::retire(const handle& slot) {
  {
    std::lock_guard lock(slot->mutex);
    if (!slot->loaded()) {
      return false;
    }
    slot->word.fetch_or(slot_type::closing_bit, std::memory_order_acq_rel);
  }
  try_start_unload(*slot);
  return true;
}

inline std::size_t function_registry::unload_idle(clock::duration idle_timeout) {
  const auto now = clock::now().time_since_epoch().count();
  std::size_t started = 0;
  for (const auto& slot : all()) {
    auto word = slot->word.load(std::memory_order_acquire);
    // Only a loaded, open slot with no lease, idle long enough: claimed in one step.
    if (word != slot_type::loaded_bit ||
        now - slot->last_used.load(std::memory_order_relaxed) < idle_timeout.count()) {
      continue;
    }
    if (slot->word.compare_exchange_strong(word,
                                           word | slot_type::closing_bit | slot_type::unloading_bit,
                                           std::memory_order_acq_rel)) {
      detail::spawn_later(executor_, unload(slot), logger_);
      ++started;
    }
  }
  return started;
}

inline boost::asio::awaitable<bool> function_registry::unload_all(clock::time_point deadline) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  for (;;) {
    bool busy = false;
    for (const auto& slot : all()) {
      retire(slot);
      std::lock_guard lock(slot->mutex);
      busy = busy || slot->loaded() || slot->loading;
    }
    if (!busy) {
      co_return true;
    }
    if (clock::now() >= deadline) {
      co_return false;
    }
    timer.expires_after(std::chrono::milliseconds(5));
    co_await timer.async_wait(boost::asio::use_awaitable);
  }
}

inline std::vector<function_status> function_registry::status() const {
  std::vector<function_status> out;
  const auto now = clock::now().time_since_epoch().count();
  for (const auto& slot : all()) {
    function_status s;
    s.id = slot->registration.static_manifest.id;
    std::lock_guard lock(slot->mutex);
    s.loaded = slot->loaded();
    s.loading = slot->loading;
    s.in_flight = slot->leases();
    if (s.loaded) {
      s.idle = clock::duration(now - slot->last_used.load(std::memory_order_relaxed));
    }
    s.last_error = slot->last_error;
    s.metrics = &slot->metrics;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace fezz
