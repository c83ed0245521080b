// fezz_example: the example server. Five functions, the host's system
// endpoints, and a command line where every flag can also come from the
// environment as FEZZ_<NAME> (e.g. FEZZ_PORT=9000).

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
  --help                  print this and exit
)";

struct options {
  std::string host = "0.0.0.0";
  std::uint16_t port = 8080;
  unsigned threads = 0;
  double idle_timeout_seconds = 300;
  std::size_t max_body_bytes = 8 * 1024 * 1024;
  std::size_t max_in_flight = 0;
  double drain_grace_seconds = 0;
};

[[noreturn]] void fail(const std::string& message) {
  std::cerr << "fezz_example: " << message << "\n\n" << usage;
  std::exit(2);
}

template <class T>
T parse_number(std::string_view flag, std::string_view text, T min, T max) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) {
    fail(fmt::format("--{}: '{}' is not a number from {} to {}", flag, text, min, max));
  }
  return value;
}

void apply(options& o, std::string_view flag, std::string_view value) {
  if (flag == "host") {
    o.host = value;
  } else if (flag == "port") {
    o.port = parse_number<std::uint16_t>(flag, value, 0, 65535);
  } else if (flag == "threads") {
    o.threads = parse_number<unsigned>(flag, value, 1, 1024);
  } else if (flag == "idle-timeout") {
    o.idle_timeout_seconds = parse_number<double>(flag, value, 0.001, 365.0 * 24 * 3600);
  } else if (flag == "max-body-bytes") {
    o.max_body_bytes = parse_number<std::size_t>(flag, value, 0, std::size_t{1} << 40);
  } else if (flag == "drain-grace") {
    o.drain_grace_seconds = parse_number<double>(flag, value, 0, 3600);
  } else if (flag == "max-in-flight") {
    o.max_in_flight = parse_number<std::size_t>(flag, value, 0, std::size_t{1} << 32);
  } else {
    fail(fmt::format("unknown option --{}", flag));
  }
}

options parse_options(int argc, char** argv) {
  options o;
  // The environment first, so the command line wins.
  for (const std::string_view flag : {"host", "port", "threads", "idle-timeout", "max-body-bytes",
                                      "max-in-flight", "drain-grace"}) {
    std::string name = "FEZZ_";
    for (const char c : flag) {
      name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    if (const char* value = std::getenv(name.c_str()); value != nullptr && *value != '\0') {
      apply(o, flag, value);
    }
  }
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      std::exit(0);
    }
    if (!arg.starts_with("--")) {
      fail(fmt::format("unexpected argument '{}'", arg));
    }
    arg.remove_prefix(2);
    if (const auto eq = arg.find('='); eq != std::string_view::npos) {
      apply(o, arg.substr(0, eq), arg.substr(eq + 1));
    } else if (i + 1 < argc) {
      apply(o, arg, argv[++i]);
    } else {
      fail(fmt::format("--{} needs a value", arg));
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_options(argc, argv);
  // Logs go to stderr; stdout carries only the "listening on" line.
  spdlog::set_default_logger(spdlog::stderr_color_mt("fezz"));

  const auto seconds = [](double s) {
    return std::chrono::duration_cast<fezz::config::duration>(std::chrono::duration<double>(s));
  };
  const auto idle = seconds(o.idle_timeout_seconds);
  fezz::server server(fezz::config()
                          .host(o.host)
                          .port(o.port)
                          .threads(o.threads)
                          .idle_timeout(idle)
                          .max_body_bytes(o.max_body_bytes)
                          .max_in_flight(o.max_in_flight)
                          .drain_grace(seconds(o.drain_grace_seconds)));
  try {
    server.start();
  } catch (const boost::system::system_error& e) {
    std::cerr << "fezz_example: cannot listen on " << o.host << ":" << o.port << ": "
              << e.code().message() << "\n";
    return 1;
  }
  const bool v6 = o.host.find(':') != std::string::npos;
  std::cout << fmt::format("listening on http://{}{}{}:{}", v6 ? "[" : "", o.host, v6 ? "]" : "",
                           server.port())
            << std::endl;
  server.wait();
  return 0;
}
