#include <fezz/function.hpp>

#include <spdlog/sinks/null_sink.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>

using namespace std::chrono_literals;

namespace {

struct sync_function {
  int loads = 0;
  fezz::response fetch(const fezz::request& req, fezz::context& ctx) {
    return fezz::response::text(std::string(req.path()) + " by " + ctx.function_id());
  }
};

struct coroutine_function {
  boost::asio::awaitable<fezz::response> fetch(fezz::request, fezz::context&) {
    co_return fezz::response::text("later");
  }
  boost::asio::awaitable<void> on_load(fezz::context&) { co_return; }
};

struct returns_error {
  fezz::response fetch(const fezz::request&, fezz::context&) {
    return fezz::error(boost::beast::http::status::forbidden, "no");
  }
  void on_unload(fezz::context&) {}
};

struct no_fetch {
  void on_load(fezz::context&) {}
};

struct wrong_result {
  int fetch(const fezz::request&, fezz::context&) { return 1; }
};

}  // namespace

struct macro_function {
  FEZZ_FUNCTION(macro_function, .id = "macro-fn", .method = "POST", .path = "/m", .timeout = 5s);
  int calls = 0;
  fezz::response fetch(const fezz::request&, fezz::context&) {
    return fezz::response::text(std::to_string(++calls));
  }
};

TEST_CASE("the function concept accepts fetch returning a response or an awaitable of one",
          "[function]") {
  STATIC_REQUIRE(fezz::function<sync_function>);
  STATIC_REQUIRE(fezz::function<coroutine_function>);
  STATIC_REQUIRE(fezz::function<returns_error>);
  STATIC_REQUIRE_FALSE(fezz::function<no_fetch>);
  STATIC_REQUIRE_FALSE(fezz::function<wrong_result>);
  STATIC_REQUIRE(fezz::has_on_load<coroutine_function>);
  STATIC_REQUIRE_FALSE(fezz::has_on_load<sync_function>);
  STATIC_REQUIRE(fezz::has_on_unload<returns_error>);
  STATIC_REQUIRE(fezz::function_with_manifest<macro_function>);
  STATIC_REQUIRE_FALSE(fezz::function_with_manifest<sync_function>);
}

TEST_CASE("FEZZ_FUNCTION yields a type, a compile-time manifest and a registration", "[function]") {
  STATIC_REQUIRE(macro_function::manifest.id == "macro-fn");
  STATIC_REQUIRE(macro_function::manifest.method == "POST");
  STATIC_REQUIRE(macro_function::manifest.timeout == 5s);
  STATIC_REQUIRE(macro_function::manifest.version == "v1");
  const auto all = fezz::registered_functions();
  const auto it = std::find_if(all.begin(), all.end(),
                               [](const auto& r) { return r.static_manifest.id == "macro-fn"; });
  REQUIRE(it != all.end());
  CHECK(it->static_manifest.path == "/m");

  // The registration's factory makes independent instances.
  fezz::function_info info{
      fezz::owned_manifest{macro_function::manifest},
      {},
      std::make_shared<spdlog::logger>("t", std::make_shared<spdlog::sinks::null_sink_mt>())};
  fezz::context ctx(info, std::chrono::steady_clock::now() + 1s);
  auto a = it->make();
  auto b = it->make();
  fezz::request req(boost::beast::http::verb::post, "/m");
  CHECK(std::get<fezz::response>(a->fetch(req, ctx)).body() == "1");
  CHECK(std::get<fezz::response>(a->fetch(req, ctx)).body() == "2");
  CHECK(std::get<fezz::response>(b->fetch(req, ctx)).body() == "1");
}

TEST_CASE("the erased instance reports hooks and calls both kinds of fetch", "[function]") {
  fezz::function_info info{
      fezz::owned_manifest("f", "v1", "GET", "/f"),
      {},
      std::make_shared<spdlog::logger>("t", std::make_shared<spdlog::sinks::null_sink_mt>())};
  fezz::context ctx(info, std::chrono::steady_clock::now() + 1s);
  fezz::request req(boost::beast::http::verb::get, "/x");

  auto sync = fezz::function_registration::of<sync_function>(fezz::manifest{.id = "s"}).make();
  CHECK_FALSE(sync->has_on_load());
  CHECK_FALSE(sync->fetch_is_coroutine());  // dispatch calls it without a coroutine frame
  CHECK(std::get<fezz::response>(sync->fetch(req, ctx)).body() == "/x by f");

  auto denied = fezz::function_registration::of<returns_error>(fezz::manifest{.id = "e"}).make();
  CHECK(std::get<fezz::response>(denied->fetch(req, ctx)).status_code() == 403);
  CHECK(denied->has_on_unload());
  CHECK_FALSE(denied->fetch_is_coroutine());

  auto co = fezz::function_registration::of<coroutine_function>(fezz::manifest{.id = "c"}).make();
  CHECK(co->has_on_load());
  CHECK(co->fetch_is_coroutine());
  auto outcome = co->fetch(req, ctx);
  REQUIRE(outcome.index() == 1);
  boost::asio::io_context io;
  auto done = boost::asio::co_spawn(io, std::get<1>(std::move(outcome)), boost::asio::use_future);
  io.run();
  CHECK(done.get().body() == "later");
}
