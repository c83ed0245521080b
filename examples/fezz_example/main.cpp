// fezz_example: the example server. Five functions, the host's system
// endpoints, and a command line where every flag can also come from the
// environment as FEZZ_<NAME> (e.g. FEZZ_PORT=9000).

#include "../common/command_line.hpp"
#include "../common/store_flags.hpp"

#include <fezz/fezz.hpp>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

using namespace std::chrono_literals;

namespace examples {

struct hello {
  FEZZ_FUNCTION(hello, .id = "hello", .path = "/hello",
                .description = "Greets X-Name or the World");
  fezz::response fetch(const fezz::request& req, fezz::context&) const {
    return fezz::response::text(fmt::format("Hello, {}!", req.header("X-Name", "World")));
  }
};

struct echo {
  FEZZ_FUNCTION(echo, .id = "echo", .method = "POST", .path = "/echo",
                .description = "Answers the request body as it came");
  fezz::response fetch(fezz::request req, fezz::context&) const {
    const auto type = req.header("Content-Type", "application/octet-stream");
    return fezz::response(fezz::http::status::ok)
        .header(fezz::http::field::content_type, type)
        .body(std::move(req.body()));
  }
};

struct counter {
  FEZZ_FUNCTION(counter, .id = "counter", .path = "/counter",
                .description = "Counts its calls since it was loaded");
  std::atomic<std::uint64_t> count{0};

  void on_load(fezz::context& ctx) { ctx.logger().info("counter starts from zero"); }
  fezz::response fetch(const fezz::request&, fezz::context&) {
    return fezz::response::json({{"count", count.fetch_add(1) + 1}});
  }
  void on_unload(fezz::context& ctx) { ctx.logger().info("counter stops at {}", count.load()); }
};

struct user {
  FEZZ_FUNCTION(user, .id = "user", .path = "/users/:id", .description = "Names a user by id");
  fezz::response fetch(const fezz::request& req, fezz::context&) const {
    return fezz::response::json({{"id", req.param("id")}});
  }
};

// A coroutine: the timer waits without holding a thread. Past its 2 s
// timeout the host cancels it and answers 504; more than 32 calls at once get
// 429.
struct sleep {
  FEZZ_FUNCTION(sleep, .id = "sleep", .path = "/sleep", .timeout = 2s,
                .description = "Waits ?ms=N milliseconds", .max_concurrency = 32);
  boost::asio::awaitable<fezz::response> fetch(fezz::request req, fezz::context&) const {
    const auto text = req.query_param("ms").value_or("0");
    unsigned ms = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (ec != std::errc{} || end != text.data() + text.size() || ms > 3'600'000) {
      throw fezz::error(fezz::http::status::bad_request,
                        "ms must be a whole number of milliseconds up to 3600000");
    }
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor,
                                    std::chrono::milliseconds(ms));
    co_await timer.async_wait(boost::asio::use_awaitable);
    co_return fezz::response::text(fmt::format("slept {} ms", ms));
  }
};

}  // namespace examples

namespace {

constexpr std::string_view usage = R"(usage: fezz_example [options]

Serves the example functions: /hello, /echo, /counter, /users/:id, /sleep?ms=N,
and the host's /_health and /_metrics.

options (each also read from the environment as FEZZ_<NAME>, e.g. FEZZ_PORT):
  --host ADDRESS          address to bind (default 0.0.0.0)
  --port PORT             port to listen on, 0 picks a free one (default 8080)
  --threads N             worker threads (default: one per core)
  --idle-timeout SECONDS  unload a function idle this long; decimals allowed (default 300)
  --max-body-bytes N      largest request body accepted (default 8388608)
  --max-in-flight N       function calls in flight at once, beyond it 429; 0 = no limit (default 0)
  --drain-grace SECONDS   on SIGTERM, fail /_health but serve as usual this long first (default 0)
  --module-cache DIR      where function modules are kept once checked (default: the system's
                          temporary folder/fezz-modules-UID)
  --max-module-bytes N    largest function module opened, beyond it 503 (default 268435456)
  --store URL             memory (default), etcd://host:port[,host:port...] or etcds://... for TLS
  --store-prefix PREFIX   the store's keys start with it (default /fezz/)
  --node NAME             this node's name in the store (default node-1)
  --advertise URL         where this node is reached, in its node record (default from --host/--port)
  --etcd-ca FILE          etcds: the CA that signed etcd's certificate
  --etcd-cert FILE        etcds: a client certificate, and --etcd-key FILE its key
  --etcd-user USER        etcd authentication; the password from FEZZ_ETCD_PASSWORD
  --help                  print this and exit
)";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> flags = {
      "host",        "port", "threads",   "idle-timeout", "max-body-bytes",  "max-in-flight",
      "drain-grace", "node", "advertise", "module-cache", "max-module-bytes"};
  flags.insert(flags.end(), examples::store_flags.begin(), examples::store_flags.end());
  const examples::command_line line("fezz_example", usage, argc, argv, flags);
  if (!line.positional().empty()) {
    line.fail(fmt::format("unexpected argument '{}'", line.positional().front()));
  }
  // Logs go to stderr; stdout carries only the "listening on" line.
  spdlog::set_default_logger(spdlog::stderr_color_mt("fezz"));
  const std::string host = line.text("host", "0.0.0.0");
  const auto port = line.number<std::uint16_t>("port", 8080, 0, 65535);
  const auto seconds = [&](std::string_view flag, double fallback, double min) {
    return std::chrono::duration_cast<fezz::config::duration>(
        std::chrono::duration<double>(line.number<double>(flag, fallback, min, 365.0 * 24 * 3600)));
  };
  const auto settings =
      fezz::config()
          .host(host)
          .port(port)
          .threads(line.number<unsigned>("threads", 0, 1, 1024))
          .idle_timeout(seconds("idle-timeout", 300, 0.001))
          .max_body_bytes(
              line.number<std::size_t>("max-body-bytes", 8 * 1024 * 1024, 0, std::size_t{1} << 40))
          .max_in_flight(line.number<std::size_t>("max-in-flight", 0, 0, std::size_t{1} << 32))
          .drain_grace(seconds("drain-grace", 0, 0))
          .node(line.text("node", "node-1"))
          .advertise(line.text("advertise"))
          .module_cache(line.text("module-cache"))
          .max_module_bytes(line.number<std::size_t>("max-module-bytes", 256 * 1024 * 1024, 0,
                                                     std::size_t{1} << 40));

  std::shared_ptr<fezz::function_store> store;
  try {
    store = examples::open_store(line, "memory", spdlog::default_logger());
  } catch (const std::exception& e) {
    std::cerr << "fezz_example: cannot open the store: " << e.what() << "\n";
    return 1;
  }
  fezz::server server(settings, store);
  try {
    server.start();
  } catch (const boost::system::system_error& e) {
    std::cerr << "fezz_example: cannot listen on " << host << ":" << port << ": "
              << e.code().message() << "\n";
    return 1;
  } catch (const fezz::store_error& e) {
    std::cerr << "fezz_example: cannot join the store: " << e.what() << "\n";
    return 1;
  }
  const bool v6 = host.find(':') != std::string::npos;
  std::cout << fmt::format("listening on http://{}{}{}:{}", v6 ? "[" : "", host, v6 ? "]" : "",
                           server.port())
            << std::endl;
  server.wait();
  return 0;
}
