#pragma once

// Runs a coroutine against a deadline: the first to finish wins and the other
// is cancelled. Both are awaited, so whatever the coroutine references (the
// request, the context, the lease) outlives it.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <variant>

namespace fezz::detail {

namespace asio = boost::asio;

// nullopt if the deadline passed first; rethrows what the coroutine threw.
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
  if (order[0] == 1) {
    co_return std::nullopt;
  }
  if (thrown) {
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

}  // namespace fezz::detail
