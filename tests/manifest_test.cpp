#include <fezz/manifest.hpp>

#include <catch2/catch.hpp>

using namespace std::chrono_literals;

TEST_CASE("manifest has the documented defaults", "[manifest]") {
  constexpr fezz::manifest m{.id = "hello"};
  STATIC_REQUIRE(m.version == "v1");
  STATIC_REQUIRE(m.method == "GET");
  STATIC_REQUIRE(m.path == "/");
  STATIC_REQUIRE(m.timeout == 30s);
  STATIC_REQUIRE(m.description.empty());
  STATIC_REQUIRE(fezz::manifest_problem(m).empty());
}

TEST_CASE("manifest problems are found at compile time", "[manifest]") {
  STATIC_REQUIRE(fezz::manifest_problem(fezz::manifest{}) == "id must not be empty");
  STATIC_REQUIRE(!fezz::manifest_problem(fezz::manifest{.id = "x", .method = "get"}).empty());
  STATIC_REQUIRE(!fezz::manifest_problem(fezz::manifest{.id = "x", .path = "hello"}).empty());
  STATIC_REQUIRE(!fezz::manifest_problem(fezz::manifest{.id = "x", .timeout = 0s}).empty());
  STATIC_REQUIRE(fezz::manifest_problem(fezz::manifest{.id = "x", .method = "ANY"}).empty());
}

TEST_CASE("owned_manifest copies a manifest", "[manifest]") {
  constexpr fezz::manifest m{.id = "sleep", .path = "/sleep", .timeout = 2s, .description = "d"};
  const fezz::owned_manifest owned{m};
  CHECK(owned.id == "sleep");
  CHECK(owned.version == "v1");
  CHECK(owned.path == "/sleep");
  CHECK(owned.timeout == 2s);
  CHECK(owned.description == "d");
  CHECK(owned == fezz::owned_manifest{m});
  CHECK(fezz::manifest_problem(fezz::owned_manifest{"", "v1", "GET", "/"}) ==
        "id must not be empty");
}
