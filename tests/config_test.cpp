#include <fezz/config.hpp>

#include <catch2/catch.hpp>

using namespace std::chrono_literals;

TEST_CASE("config has production defaults", "[config]") {
  const fezz::config c;
  CHECK(c.host() == "0.0.0.0");
  CHECK(c.port() == 8080);
  CHECK(c.threads() == 0);
  CHECK(c.effective_threads() >= 1);
  CHECK(c.idle_timeout() == 300s);
  CHECK(c.max_body_bytes() == 8u * 1024 * 1024);
  CHECK(c.max_header_bytes() == 16u * 1024);
  CHECK(c.max_target_bytes() == 8u * 1024);
  CHECK(c.max_module_bytes() == 256u * 1024 * 1024);
  CHECK(c.header_timeout() == 10s);
  CHECK(c.keep_alive_timeout() == 60s);
  CHECK(c.drain_timeout() == 10s);
  CHECK(c.register_macro_functions());
  CHECK(c.env().empty());
}

TEST_CASE("config's builder chains", "[config]") {
  const auto c = fezz::config()
                     .host("127.0.0.1")
                     .port(9000)
                     .env("API_KEY", "secret")
                     .env("API_KEY", "newer")
                     .env("REGION", "eu")
                     .threads(3)
                     .idle_timeout(1500ms)
                     .max_body_bytes(10);
  CHECK(c.host() == "127.0.0.1");
  CHECK(c.port() == 9000);
  CHECK(c.threads() == 3);
  CHECK(c.effective_threads() == 3);
  CHECK(c.idle_timeout() == 1500ms);
  CHECK(c.max_body_bytes() == 10);
  CHECK(c.env().size() == 2);
  CHECK(c.env().at("API_KEY") == "newer");
}
