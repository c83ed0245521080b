// The function module of tests/module_test.py: ordinary FEZZ_FUNCTION code, built
// by fezz_add_module() once per GREETING_VERSION.
#include <fezz/function.hpp>

#include <fmt/format.h>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <stdexcept>

namespace module_test {

// Says which build answers, and how many calls this instance has had (1 after a load).
struct greeting {
  FEZZ_FUNCTION(greeting, .id = "greeting", .path = "/greeting",
                .description = "Hello from a module");
  std::atomic<int> calls{0};
  // Fails while the file GREETING_NEEDS names (if it names one) is missing.
  void on_load(fezz::context& ctx) {
    if (const auto needed = ctx.env("GREETING_NEEDS");
        needed && !std::filesystem::exists(*needed)) {
      throw std::runtime_error(fmt::format("{} is missing", *needed));
    }
  }
  fezz::response fetch(const fezz::request&, fezz::context& ctx) {
    return fezz::response::text(fmt::format("Hello from module v{}, call {}, env {}",
                                            GREETING_VERSION, ++calls,
                                            ctx.env("GREETING_WORD", "none")));
  }
};

// A coroutine: its frame and the timer's handler are the module's code.
struct nap {
  FEZZ_FUNCTION(nap, .id = "nap", .path = "/nap", .description = "Sleeps 5 ms");
  boost::asio::awaitable<fezz::response> fetch(fezz::request, fezz::context&) const {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor,
                                    std::chrono::milliseconds(5));
    co_await timer.async_wait(boost::asio::use_awaitable);
    co_return fezz::response::text(fmt::format("rested, v{}", GREETING_VERSION));
  }
};

}  // namespace module_test
