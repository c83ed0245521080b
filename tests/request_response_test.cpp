#include <fezz/request.hpp>
#include <fezz/response.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace http = boost::beast::http;

TEST_CASE("request splits its target into path and query", "[request]") {
  const fezz::request req(http::verb::get, "/users/7?sort=name&q=a%20b+c&flag");
  CHECK(req.method() == "GET");
  CHECK(req.verb() == http::verb::get);
  CHECK(req.url() == "/users/7?sort=name&q=a%20b+c&flag");
  CHECK(req.path() == "/users/7");
  CHECK(req.query() == "sort=name&q=a%20b+c&flag");
  CHECK(req.query_param("sort") == "name");
  CHECK(req.query_param("q") == "a b c");
  CHECK(req.query_param("flag") == "");
  CHECK_FALSE(req.query_param("missing").has_value());

  const fezz::request bare(http::verb::get, "/plain");
  CHECK(bare.path() == "/plain");
  CHECK(bare.query().empty());
}

TEST_CASE("request headers are case-insensitive; body and params are kept", "[request]") {
  fezz::request::message_type message{http::verb::post, "/echo", 11};
  message.set("X-Name", "Alice");
  message.body() = std::string("a\0b", 3);
  fezz::request req(std::move(message), {{"id", "42"}, {"*", "rest/of/it"}});
  CHECK(req.header("x-name") == "Alice");
  CHECK(req.get_header("X-NAME") == "Alice");
  CHECK(req.header("X-Other", "World") == "World");
  CHECK_FALSE(req.get_header("X-Other").has_value());
  CHECK(req.has_header("x-Name"));
  CHECK(req.body() == std::string("a\0b", 3));
  CHECK(req.param("id") == "42");
  CHECK(req.param("*") == "rest/of/it");
  CHECK(req.param("nope").empty());
}

TEST_CASE("response builders set status, type and body", "[response]") {
  const auto text = fezz::response::text("Hello, World!");
  CHECK(text.status() == http::status::ok);
  CHECK(text.header("Content-Type") == "text/plain; charset=utf-8");
  CHECK(text.body() == "Hello, World!");

  const auto json = fezz::response::json({{"count", 1}}, http::status::created);
  CHECK(json.status_code() == 201);
  CHECK(json.header("content-type") == "application/json");
  CHECK(nlohmann::json::parse(json.body()) == nlohmann::json{{"count", 1}});

  const auto built =
      fezz::response(http::status::accepted).header("X-Custom", "value").body("content");
  CHECK(built.status() == http::status::accepted);
  CHECK(built.header("x-custom") == "value");
  CHECK(built.body() == "content");
  CHECK(built.header("X-Absent").empty());
}

TEST_CASE("error responses carry a JSON body with status, reason and message", "[response]") {
  const auto r = fezz::response::error(http::status::not_found, "Resource not found");
  CHECK(r.status() == http::status::not_found);
  CHECK(r.header("Content-Type") == "application/json");
  const auto body = nlohmann::json::parse(r.body());
  CHECK(body ==
        nlohmann::json{{"status", 404}, {"error", "Not Found"}, {"message", "Resource not found"}});
}

TEST_CASE("a fezz::error converts to its response", "[response][error]") {
  const fezz::error e(http::status::conflict, "already there");
  CHECK(e.status() == http::status::conflict);
  CHECK(std::string(e.what()) == "already there");
  const fezz::response r = e;
  CHECK(r.status() == http::status::conflict);
  CHECK(nlohmann::json::parse(r.body())["message"] == "already there");
  CHECK(fezz::error("plain").status() == http::status::internal_server_error);
}
