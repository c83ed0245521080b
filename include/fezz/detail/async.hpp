#pragma once

// Helpers for the host's Asio coroutines: a deadline on a coroutine
// (`complete_by`), awaiting without exceptions (`nothrow_awaitable`), and
// starting a detached coroutine whose failure is logged (`spawn_later`,
// `log_failure`).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/logger.h>

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <variant>

namespace fezz::detail {

namespace asio = boost::asio;

// `co_await op(..., nothrow_awaitable)` yields (error_code, results...) instead of throwing.
inline constexpr auto nothrow_awaitable = asio::as_tuple(asio::use_awaitable);

// Runs a coroutine against a deadline: the first to finish wins and the other
// is cancelled. Both are awaited, so whatever the coroutine references (the
// request, the context, the lease) outlives it. nullopt if the deadline passed
// first and cancelling the coroutine ended it; rethrows what it threw. A
// coroutine that finished all the same (both were due at once, as after the
// process was stopped and continued) gives its value: it did answer.
template <class T>
asio::awaitable<std::optional<T>> complete_by(asio::awaitable<T> op,
                                              std::chrono::steady_clock::time_point deadline) {
  const auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, deadline);
  auto [order, thrown, value, timer_error] =
      co_await asio::experimental::make_parallel_group(
          asio::co_spawn(executor, std::move(op), asio::deferred), timer.async_wait(asio::deferred))
          .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
  (void)timer_error;
  if (thrown) {
    if (order[0] == 1) {
      co_return std::nullopt;  // ended by the cancellation (or failing as the deadline passed)
    }
    std::rethrow_exception(thrown);
  }
  co_return std::optional<T>{std::move(value)};
}

inline asio::awaitable<std::monostate> as_value(asio::awaitable<void> op) {
  co_await std::move(op);
  co_return std::monostate{};
}

// The same for a coroutine without a value: false if the deadline passed first.
inline asio::awaitable<bool> complete_by(asio::awaitable<void> op,
                                         std::chrono::steady_clock::time_point deadline) {
  const auto done = co_await complete_by(as_value(std::move(op)), deadline);
  co_return done.has_value();
}

// The text of the exception being handled; call it inside a catch block.
inline std::string describe_current_exception() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

// co_spawn completion for the host's own coroutines: they catch what they
// can; anything left is logged rather than thrown out of io_context::run.
struct log_failure {
  std::shared_ptr<spdlog::logger> logger;
  void operator()(const std::exception_ptr& e) const {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (...) {
        logger->error("background task failed: {}", describe_current_exception());
      }
    }
  }
};

// Starts a coroutine later, never inline: callers may hold a mutex that the
// coroutine takes.
inline void spawn_later(const asio::any_io_executor& executor, asio::awaitable<void> task,
                        std::shared_ptr<spdlog::logger> logger) {
  asio::post(executor, [executor, task = std::move(task), logger = std::move(logger)]() mutable {
    asio::co_spawn(executor, std::move(task), log_failure{std::move(logger)});
  });
}

}  // namespace fezz::detail
