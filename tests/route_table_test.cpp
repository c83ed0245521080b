#include <fezz/route_table.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace {

fezz::route make_route(std::string method, std::string pattern, std::string function_id,
                       int priority = 0) {
  return fezz::route{std::move(method), std::move(pattern), std::move(function_id), priority};
}

// The function id find() picks, or "" on no match.
std::string found(const fezz::route_table& table, std::string_view path,
                  std::string_view method = "GET") {
  const auto match = table.find(path, method);
  return match ? match->matched->function_id : std::string();
}

fezz::route_table example_table() {
  fezz::route_table table;
  table.add(make_route("GET", "/api/users", "users-list"));
  table.add(make_route("GET", "/api/users/:id", "user-get"));
  table.add(make_route("GET", "/api/*", "api-catch-all", 0));
  return table;
}

using strings = std::vector<std::string>;

}  // namespace

TEST_CASE("the README example routes to the most specific route", "[route_table]") {
  const fezz::route_table table = example_table();
  REQUIRE(table.size() == 3);

  const auto user = table.find("/api/users/123", "GET");
  REQUIRE(user);
  CHECK(user->matched->function_id == "user-get");
  CHECK(user->params == fezz::path_params{{"id", "123"}});
  CHECK(user->param("id") == "123");
  CHECK(user->param("missing").empty());

  const auto list = table.find("/api/users", "GET");
  REQUIRE(list);
  CHECK(list->matched->function_id == "users-list");
  CHECK(list->params.empty());

  const auto other = table.find("/api/other/x", "GET");
  REQUIRE(other);
  CHECK(other->matched->function_id == "api-catch-all");
  CHECK(other->params == fezz::path_params{{"*", "other/x"}});

  const auto bare = table.find("/api", "GET");
  REQUIRE(bare);
  CHECK(bare->matched->function_id == "api-catch-all");
  CHECK(bare->params == fezz::path_params{{"*", ""}});

  CHECK_FALSE(table.find("/apis", "GET"));
  CHECK_FALSE(table.find("/", "GET"));
  CHECK_FALSE(table.find("/api/users/1", "POST"));
}

TEST_CASE("a higher priority beats a more specific route", "[route_table]") {
  fezz::route_table table = example_table();
  table.add(make_route("GET", "/api/*", "api-catch-all", 10));
  CHECK(table.size() == 3);
  CHECK(found(table, "/api/users/123") == "api-catch-all");
  CHECK(found(table, "/api/users") == "api-catch-all");
  CHECK(found(table, "/api") == "api-catch-all");

  fezz::route_table params_first;
  params_first.add(make_route("GET", "/a/b", "static"));
  params_first.add(make_route("GET", "/a/:x", "param", 1));
  params_first.add(make_route("GET", "/a/*", "wild", -1));
  CHECK(found(params_first, "/a/b") == "param");
  CHECK(found(params_first, "/a/c") == "param");
  CHECK(found(params_first, "/a/c/d") == "wild");
  CHECK(found(params_first, "/a") == "wild");
}

TEST_CASE("specificity is decided at the first segment that differs", "[route_table]") {
  fezz::route_table table;
  table.add(make_route("GET", "/:y/b/c", "param-first"));
  table.add(make_route("GET", "/a/:x/c", "static-first"));
  table.add(make_route("GET", "/a/:x/:z", "static-first-then-params"));
  table.add(make_route("GET", "/*", "root-wild"));
  CHECK(found(table, "/a/b/c") == "static-first");
  CHECK(found(table, "/a/b/d") == "static-first-then-params");
  CHECK(found(table, "/z/b/c") == "param-first");
  CHECK(found(table, "/z/b/d") == "root-wild");

  fezz::route_table wilds;
  wilds.add(make_route("GET", "/a/*", "short-wild"));
  wilds.add(make_route("GET", "/a/b/*", "long-wild"));
  wilds.add(make_route("GET", "/a/:x/c", "param"));
  CHECK(found(wilds, "/a/b/c") == "long-wild");  // static 'b' beats ':x' at the second segment
  CHECK(found(wilds, "/a/q/c") == "param");      // ':x' beats the shorter wildcard's '*'
  CHECK(found(wilds, "/a/b/x") == "long-wild");
  CHECK(found(wilds, "/a/b") == "long-wild");  // the longer wildcard, matching zero segments
  CHECK(found(wilds, "/a/q/x") == "short-wild");
}

TEST_CASE("an exact end beats a wildcard that matches zero segments", "[route_table]") {
  // Otherwise "/api" would be unreachable beside "/api/*".
  fezz::route_table table;
  table.add(make_route("GET", "/api/*", "catch-all"));
  table.add(make_route("GET", "/api", "exact"));
  CHECK(found(table, "/api") == "exact");
  CHECK(found(table, "/api/") == "exact");
  CHECK(found(table, "/api/x") == "catch-all");

  table.add(make_route("GET", "/api/*", "catch-all", 1));
  CHECK(found(table, "/api") == "catch-all");
}

TEST_CASE("wildcards match zero or more segments and name their value", "[route_table]") {
  fezz::route_table table;
  table.add(make_route("GET", "/static/*", "static"));
  table.add(make_route("GET", "/files/*rest", "files"));

  const auto zero = table.find("/static", "GET");
  REQUIRE(zero);
  CHECK(zero->params == fezz::path_params{{"*", ""}});
  const auto zero_slash = table.find("/static/", "GET");
  REQUIRE(zero_slash);
  CHECK(zero_slash->params == fezz::path_params{{"*", ""}});

  const auto deep = table.find("/files//a/b///c.txt/", "GET");
  REQUIRE(deep);
  CHECK(deep->matched->function_id == "files");
  CHECK(deep->params == fezz::path_params{{"rest", "a/b/c.txt"}});
  CHECK(deep->param("rest") == "a/b/c.txt");
  CHECK(deep->param("*").empty());

  std::string long_path = "/static";
  for (int i = 0; i < 5000; ++i) {
    long_path += "/s";
  }
  const auto longest = table.find(long_path, "GET");
  REQUIRE(longest);
  CHECK(longest->param("*").size() == 5000 * 2 - 1);

  CHECK(found(table, "/stat") == "");
  CHECK(found(table, "/") == "");
}

TEST_CASE("empty and trailing segments are ignored", "[route_table]") {
  fezz::route_table table;
  table.add(make_route("GET", "/", "root"));
  table.add(make_route("GET", "/hello", "hello"));
  table.add(make_route("GET", "/users/:id/posts", "posts"));

  CHECK(found(table, "/") == "root");
  CHECK(found(table, "") == "root");
  CHECK(found(table, "///") == "root");
  CHECK(found(table, "/hello") == "hello");
  CHECK(found(table, "/hello/") == "hello");
  CHECK(found(table, "//hello") == "hello");
  CHECK(found(table, "hello") == "hello");
  CHECK(found(table, "/hello/x") == "");
  CHECK(found(table, "/Hello") == "");  // static segments are case-sensitive

  const auto posts = table.find("//users//42///posts/", "GET");
  REQUIRE(posts);
  CHECK(posts->params == fezz::path_params{{"id", "42"}});
  // A parameter needs a non-empty segment: the empty one between slashes is skipped.
  CHECK(found(table, "/users//posts") == "");
}

TEST_CASE("parameters capture one segment each, in pattern order", "[route_table]") {
  fezz::route_table table;
  table.add(make_route("GET", "/orgs/:org/repos/:repo/*path", "tree"));
  const auto match = table.find("/orgs/acme/repos/fezz/src/main.cpp", "GET");
  REQUIRE(match);
  CHECK(match->params ==
        fezz::path_params{{"org", "acme"}, {"repo", "fezz"}, {"path", "src/main.cpp"}});
  CHECK(found(table, "/orgs/acme/repos") == "");
  CHECK(found(table, "/orgs/acme/repos/fezz") == "tree");
}

TEST_CASE("parameter values are percent-decoded; malformed escapes stay as written",
          "[route_table]") {
  fezz::route_table table;
  table.add(make_route("GET", "/p/:v", "param"));
  table.add(make_route("GET", "/w/*", "wild"));
  table.add(make_route("GET", "/a%20b", "encoded-static"));

  const auto value = [&](std::string_view path) {
    const auto match = table.find(path, "GET");
    REQUIRE(match);
    REQUIRE(match->params.size() == 1);
    return match->params.front().second;
  };
  CHECK(value("/p/%41bc") == "Abc");
  CHECK(value("/p/a%2Fb") == "a/b");
  CHECK(value("/p/a%2fb") == "a/b");
  CHECK(value("/p/a+b") == "a+b");
  CHECK(value("/p/%E2%82%AC") == "\xE2\x82\xAC");
  CHECK(value("/p/%zz") == "%zz");
  CHECK(value("/p/x%4") == "x%4");
  CHECK(value("/p/%4z%41") == "%4zA");  // a bad escape stays, the good one decodes
  CHECK(value("/p/%") == "%");
  // Wildcards decode segment by segment, with the same rule.
  CHECK(value("/w/a%20b/%zz/c%2Fd") == "a b/%zz/c/d");

  // Static segments compare against the raw text.
  CHECK(found(table, "/a%20b") == "encoded-static");
  CHECK(found(table, "/a b") == "");
}

TEST_CASE("ANY matches every method; an exact method beats it on a tie", "[route_table]") {
  fezz::route_table table;
  table.add(make_route("ANY", "/things/:id", "any"));
  table.add(make_route("DELETE", "/things/:id", "delete"));
  table.add(make_route("ANY", "/things/special", "special-any"));

  CHECK(found(table, "/things/1", "GET") == "any");
  CHECK(found(table, "/things/1", "PATCH") == "any");
  CHECK(found(table, "/things/1", "DELETE") == "delete");
  // Specificity comes before the method.
  CHECK(found(table, "/things/special", "DELETE") == "special-any");

  table.add(make_route("ANY", "/things/:id", "any", 5));
  CHECK(found(table, "/things/1", "DELETE") == "any");
  CHECK(found(table, "/things/special", "DELETE") == "any");
}

TEST_CASE("HEAD is served by GET routes unless a HEAD route ties", "[route_table]") {
  fezz::route_table table;
  table.add(make_route("GET", "/page", "get"));
  table.add(make_route("POST", "/form", "post"));
  CHECK(found(table, "/page", "HEAD") == "get");
  CHECK(found(table, "/form", "HEAD") == "");
  CHECK(found(table, "/page", "POST") == "");

  table.add(make_route("HEAD", "/page", "head"));
  CHECK(found(table, "/page", "HEAD") == "head");
  CHECK(found(table, "/page", "GET") == "get");

  // Specificity comes before the method: a more specific GET beats a less specific HEAD.
  table.add(make_route("HEAD", "/*", "head-wild"));
  CHECK(found(table, "/page", "HEAD") == "head");
  table.remove("HEAD", "/page");
  CHECK(found(table, "/page", "HEAD") == "get");
  CHECK(found(table, "/other", "HEAD") == "head-wild");

  // For HEAD, GET beats ANY on a tie.
  fezz::route_table any_first;
  any_first.add(make_route("ANY", "/x", "any"));
  any_first.add(make_route("GET", "/x", "get"));
  CHECK(found(any_first, "/x", "HEAD") == "get");
  CHECK(found(any_first, "/x", "OPTIONS") == "any");
}

TEST_CASE("uncommon method tokens match only themselves", "[route_table]") {
  fezz::route_table table;
  table.add(make_route("PURGE", "/cache/*", "purge"));
  table.add(make_route("PROPFIND", "/cache/*", "propfind"));
  table.add(make_route("ANY", "/cache/locked", "any"));
  CHECK(found(table, "/cache/a", "PURGE") == "purge");
  CHECK(found(table, "/cache/a", "PROPFIND") == "propfind");
  CHECK(found(table, "/cache/a", "LOCK") == "");
  CHECK(found(table, "/cache/a", "GET") == "");
  CHECK(found(table, "/cache/locked", "LOCK") == "any");
  CHECK(found(table, "/cache/locked", "PURGE") == "any");  // more specific beats the method
  CHECK(table.allowed_methods("/cache/a") == strings{"PROPFIND", "PURGE"});
}

TEST_CASE("identical rank falls back to insertion order", "[route_table]") {
  fezz::route_table table;
  table.add(make_route("GET", "/u/:name", "first"));
  table.add(make_route("GET", "/u/:id", "second"));
  const auto match = table.find("/u/7", "GET");
  REQUIRE(match);
  CHECK(match->matched->function_id == "first");
  CHECK(match->params == fezz::path_params{{"name", "7"}});

  table.remove("GET", "/u/:name");
  const auto after = table.find("/u/7", "GET");
  REQUIRE(after);
  CHECK(after->matched->function_id == "second");
  CHECK(after->params == fezz::path_params{{"id", "7"}});
}

TEST_CASE("allowed_methods lists the methods of every matching pattern", "[route_table]") {
  fezz::route_table table;
  table.add(make_route("POST", "/items/:id", "post"));
  table.add(make_route("GET", "/items/:id", "get"));
  table.add(make_route("DELETE", "/items/*", "delete-wild", -3));
  table.add(make_route("PUT", "/items/7", "put-seven"));
  table.add(make_route("PATCH", "/other", "patch"));

  CHECK(table.allowed_methods("/items/1") == strings{"DELETE", "GET", "HEAD", "POST"});
  CHECK(table.allowed_methods("/items/7/") == strings{"DELETE", "GET", "HEAD", "POST", "PUT"});
  CHECK(table.allowed_methods("/items") == strings{"DELETE"});
  CHECK(table.allowed_methods("/other") == strings{"PATCH"});
  CHECK(table.allowed_methods("/nothing").empty());
  CHECK(fezz::route_table{}.allowed_methods("/").empty());

  table.add(make_route("HEAD", "/items/:id", "head"));
  table.add(make_route("GET", "/items/*", "get-wild"));
  CHECK(table.allowed_methods("/items/1") == strings{"DELETE", "GET", "HEAD", "POST"});
  CHECK(table.allowed_methods("/items") == strings{"DELETE", "GET", "HEAD"});

  table.add(make_route("ANY", "/other", "any"));
  CHECK(table.allowed_methods("/other") == strings{"ANY", "PATCH"});
}

TEST_CASE("adding the same method and pattern replaces the route in place", "[route_table]") {
  fezz::route_table table;
  table.add(make_route("GET", "/users", "v1"));
  table.add(make_route("POST", "/users", "create"));
  table.add(make_route("GET", "/users/:id", "get-user"));
  table.add(make_route("GET", "/users", "v2", 3));
  REQUIRE(table.size() == 3);
  CHECK(table.routes() == std::vector<fezz::route>{make_route("GET", "/users", "v2", 3),
                                                   make_route("POST", "/users", "create"),
                                                   make_route("GET", "/users/:id", "get-user")});
  CHECK(found(table, "/users") == "v2");
  CHECK(found(table, "/users", "POST") == "create");

  table.add(make_route("GET", "/*", "wild", 1));
  REQUIRE(table.size() == 4);
  CHECK(found(table, "/users") == "v2");

  // Patterns that differ only in empty segments are the same pattern; the replacement's
  // lower priority now loses to the wildcard.
  table.add(make_route("GET", "//users/", "v3", 0));
  CHECK(table.size() == 4);
  CHECK(table.routes().front() == make_route("GET", "//users/", "v3"));
  CHECK(found(table, "/users") == "wild");
  CHECK(found(table, "/users", "POST") == "create");

  // Different parameter names are different patterns.
  table.add(make_route("GET", "/users/:uid", "other-name"));
  CHECK(table.size() == 5);
}

TEST_CASE("remove and remove_function take routes out", "[route_table]") {
  fezz::route_table table = example_table();
  table.add(make_route("POST", "/api/users", "users-list"));
  table.add(make_route("GET", "/health", "health"));
  REQUIRE(table.size() == 5);

  CHECK(table.remove_function("users-list") == 2);
  CHECK(table.remove_function("users-list") == 0);
  CHECK(table.size() == 3);
  CHECK(found(table, "/api/users") == "api-catch-all");
  CHECK(found(table, "/api/users/9") == "user-get");
  CHECK(table.allowed_methods("/api/users") == strings{"GET", "HEAD"});

  CHECK_FALSE(table.remove("POST", "/health"));
  CHECK_FALSE(table.remove("GET", "/api/users/:other"));
  CHECK_FALSE(table.remove("GET", "no-slash"));
  CHECK(table.remove("GET", "/api/users/:id/"));
  CHECK(table.size() == 2);
  CHECK(found(table, "/api/users/9") == "api-catch-all");
  CHECK(found(table, "/health") == "health");

  CHECK(table.remove("GET", "/api/*"));
  CHECK(table.remove("GET", "/health"));
  CHECK(table.empty());
  CHECK_FALSE(table.find("/health", "GET"));
  CHECK(table.allowed_methods("/health").empty());

  table.add(make_route("GET", "/again", "again"));
  CHECK(found(table, "/again") == "again");
  table.clear();
  CHECK(table.empty());
  CHECK(table.size() == 0);
  CHECK(table.routes().empty());
  CHECK(found(table, "/again") == "");
}

TEST_CASE("bad patterns and methods throw and leave the table unchanged", "[route_table]") {
  fezz::route_table table = example_table();
  const auto before = table.routes();

  for (const char* pattern : {"", "users", "*", ":id", "/a/*/b", "/a/*rest/b", "/*/*",
                              "/:", "/a/:/b", "/:id/:id", "/:id/*id", "/:x/y/:x"}) {
    INFO("pattern: " << pattern);
    CHECK_THROWS_AS(table.add(make_route("GET", pattern, "bad")), std::invalid_argument);
  }
  for (const char* method : {"", "get", "Get", "GET ", "G-T", "ABCDEFGHIJKLMNOPQ"}) {
    INFO("method: " << method);
    CHECK_THROWS_AS(table.add(make_route(method, "/ok", "bad")), std::invalid_argument);
  }
  CHECK_THROWS_WITH(table.add(make_route("GET", "/a/*/b", "bad")),
                    Catch::Contains("/a/*/b") && Catch::Contains("last segment"));
  CHECK_THROWS_WITH(table.add(make_route("get", "/ok", "bad")), Catch::Contains("\"get\""));
  CHECK(table.routes() == before);

  // The edge cases that are valid.
  CHECK_NOTHROW(table.add(make_route("ANY", "/", "root")));
  CHECK_NOTHROW(table.add(make_route("PURGE", "/a/*/", "trailing-slash-after-wild")));
  CHECK_NOTHROW(table.add(make_route("GET", "/:a/:b/*c", "names")));
  CHECK_NOTHROW(table.add(make_route("GET", "/a:b/c*d", "literal-punctuation")));
  CHECK(found(table, "/a:b/c*d") == "literal-punctuation");
  CHECK(found(table, "/a/x", "PURGE") == "trailing-slash-after-wild");
}

TEST_CASE("a route table is a value: copies are independent", "[route_table]") {
  fezz::route_table original = example_table();
  original.add(make_route("POST", "/api/users", "users-create"));
  const fezz::route_table snapshot = original;
  original.add(make_route("GET", "/api/*", "changed", 10));
  original.remove("GET", "/api/users");

  CHECK(found(snapshot, "/api/users") == "users-list");
  CHECK(found(snapshot, "/api/users", "POST") == "users-create");
  CHECK(found(original, "/api/users") == "changed");
  // Copies share storage until one is written: a write to the copy leaves what the
  // snapshot's match points to as it was.
  fezz::route_table copy = snapshot;
  const auto in_snapshot = snapshot.find("/api/users/1", "GET");
  REQUIRE(in_snapshot);
  copy.add(make_route("GET", "/api/users/:id", "replaced"));
  copy.remove("GET", "/api/*");
  CHECK(in_snapshot->matched->function_id == "user-get");
  CHECK(found(snapshot, "/api/users/1") == "user-get");
  CHECK(found(snapshot, "/api/x") == "api-catch-all");
  CHECK(found(copy, "/api/users/1") == "replaced");
  CHECK(found(copy, "/api/x") == "");

  fezz::route_table moved = std::move(original);
  CHECK(found(moved, "/api/users") == "changed");
  original = snapshot;  // a moved-from table can be assigned again
  CHECK(found(original, "/api/users") == "users-list");
}

namespace {

// A brute-force reference: match every route and rank them by the documented rules.
strings split(std::string_view text) {
  strings out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t slash = std::min(text.find('/', pos), text.size());
    if (slash > pos) {
      out.emplace_back(text.substr(pos, slash - pos));
    }
    pos = slash + 1;
  }
  return out;
}

struct reference_match {
  std::vector<int> shape;  // per pattern segment: 1 static, 2 parameter, 3 wildcard; 0 = exact end
  fezz::path_params params;
};

std::optional<reference_match> reference_match_route(const fezz::route& r, const strings& path) {
  const strings pattern = split(r.pattern);
  reference_match result;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const std::string& p = pattern[i];
    if (p[0] == '*') {
      std::string rest;
      for (std::size_t j = i; j < path.size(); ++j) {
        rest += (j == i ? "" : "/") + path[j];
      }
      result.shape.push_back(3);
      result.params.emplace_back(p == "*" ? "*" : p.substr(1), rest);
      return result;
    }
    if (i >= path.size()) {
      return std::nullopt;
    }
    if (p[0] == ':') {
      result.shape.push_back(2);
      result.params.emplace_back(p.substr(1), path[i]);
    } else if (p == path[i]) {
      result.shape.push_back(1);
    } else {
      return std::nullopt;
    }
  }
  if (pattern.size() != path.size()) {
    return std::nullopt;
  }
  result.shape.push_back(0);
  return result;
}

int reference_method_rank(const std::string& route_method, const std::string& method) {
  if (route_method == method) {
    return 0;
  }
  if (method == "HEAD" && route_method == "GET") {
    return 1;
  }
  return route_method == "ANY" ? 2 : -1;
}

struct reference_result {
  std::optional<std::size_t> index;
  fezz::path_params params;
  strings allowed;
};

reference_result reference_find(const std::vector<fezz::route>& routes, const std::string& path,
                                const std::string& method) {
  const strings segments = split(path);
  reference_result result;
  std::tuple<int, std::vector<int>, int, std::size_t> best_key;
  for (std::size_t i = 0; i < routes.size(); ++i) {
    const auto match = reference_match_route(routes[i], segments);
    if (!match) {
      continue;
    }
    result.allowed.push_back(routes[i].method);
    if (routes[i].method == "GET") {
      result.allowed.push_back("HEAD");
    }
    const int rank = reference_method_rank(routes[i].method, method);
    if (rank < 0) {
      continue;
    }
    auto key = std::make_tuple(-routes[i].priority, match->shape, rank, i);
    if (!result.index || key < best_key) {
      best_key = std::move(key);
      result.index = i;
      result.params = match->params;
    }
  }
  std::sort(result.allowed.begin(), result.allowed.end());
  result.allowed.erase(std::unique(result.allowed.begin(), result.allowed.end()),
                       result.allowed.end());
  return result;
}

// Returns how many of the random paths matched a route.
int cross_check(const fezz::route_table& table, std::mt19937& rng, const strings& path_words,
                int paths) {
  const std::vector<fezz::route> routes = table.routes();
  const strings methods{"GET", "HEAD", "POST", "PUT", "OPTIONS", "PURGE", "LOCK"};
  int matched = 0;
  for (int n = 0; n < paths; ++n) {
    std::string path;
    const int length = static_cast<int>(rng() % 6);
    for (int i = 0; i < length; ++i) {
      path += rng() % 8 == 0 ? "//" : "/";
      path += path_words[rng() % path_words.size()];
    }
    if (rng() % 5 == 0) {
      path += '/';
    }
    const std::string& method = methods[rng() % methods.size()];
    INFO(method << " " << path);

    const reference_result expected = reference_find(routes, path, method);
    const auto actual = table.find(path, method);
    REQUIRE(actual.has_value() == expected.index.has_value());
    if (actual) {
      ++matched;
      CHECK(*actual->matched == routes[*expected.index]);
      CHECK(actual->params == expected.params);
    }
    CHECK(table.allowed_methods(path) == expected.allowed);
  }
  return matched;
}

}  // namespace

TEST_CASE("find agrees with a brute-force ranking on random routes", "[route_table]") {
  std::mt19937 rng(20240611);
  const strings methods{"GET", "HEAD", "POST", "PUT", "ANY", "PURGE", "LOCK"};
  const strings words{"a", "b", "c"};
  const strings path_words{"a", "b", "c", "d"};

  int checked = 0;
  int matched = 0;
  for (const int route_count : {30, 300, 3000}) {
    INFO("routes: " << route_count);
    fezz::route_table table;
    for (int i = 0; i < route_count; ++i) {
      std::string pattern;
      const int length = static_cast<int>(rng() % 5);
      for (int s = 0; s < length; ++s) {
        const auto kind = rng() % 6;
        pattern += '/';
        if (kind == 0) {
          pattern += ":p" + std::to_string(s);
        } else if (kind == 1 && s + 1 == length) {
          pattern += rng() % 2 == 0 ? "*" : "*rest";
        } else {
          pattern += words[rng() % words.size()];
        }
      }
      if (pattern.empty()) {
        pattern = "/";
      }
      // One rng() call per statement, so every compiler draws the same sequence.
      const std::string& method = methods[rng() % methods.size()];
      const int priority = static_cast<int>(rng() % 3) - 1;
      table.add(make_route(method, pattern, "f" + std::to_string(i % 40), priority));
    }
    matched += cross_check(table, rng, path_words, 1500);

    // Removal rebuilds the trie; the answers must stay right.
    for (int f = 0; f < 10; ++f) {
      table.remove_function("f" + std::to_string(f));
    }
    const std::vector<fezz::route> left = table.routes();
    for (std::size_t i = 0; i < left.size(); i += 3) {
      CHECK(table.remove(left[i].method, left[i].pattern));
    }
    matched += cross_check(table, rng, path_words, 1500);
    checked += 2 * 1500;
  }
  // The generator must exercise both outcomes for the comparison to mean anything.
  CHECK(matched > checked / 10);
  CHECK(checked - matched > checked / 10);
}

TEST_CASE("a table of 100,000 routes loads and answers correctly", "[route_table]") {
  constexpr int tenants = 25'000;
  fezz::route_table table;
  for (int i = 0; i < tenants; ++i) {
    const std::string t = "/t" + std::to_string(i);
    const std::string id = std::to_string(i);
    table.add(make_route("GET", t + "/items", "list-" + id));
    table.add(make_route("GET", t + "/items/:id", "get-" + id));
    table.add(make_route("ANY", t + "/files/*rest", "files-" + id));
    table.add(make_route("POST", t + "/:kind/:id", "post-" + id, 1));
  }
  REQUIRE(table.size() == 4 * tenants);
  table.add(make_route("GET", "/*", "fallback", -1));
  REQUIRE(table.size() == 4 * tenants + 1);

  for (const int i : {0, 1, 4'999, 12'345, 24'999}) {
    const std::string t = "/t" + std::to_string(i);
    const std::string id = std::to_string(i);
    INFO("tenant " << i);
    CHECK(found(table, t + "/items") == "list-" + id);
    const auto item = table.find(t + "/items/abc", "GET");
    REQUIRE(item);
    CHECK(item->matched->function_id == "get-" + id);
    CHECK(item->params == fezz::path_params{{"id", "abc"}});
    const auto file = table.find(t + "/files/x/y.txt", "DELETE");
    REQUIRE(file);
    CHECK(file->matched->function_id == "files-" + id);
    CHECK(file->param("rest") == "x/y.txt");
    const auto post = table.find(t + "/items/9", "POST");
    REQUIRE(post);
    CHECK(post->matched->function_id == "post-" + id);
    CHECK(post->params == fezz::path_params{{"kind", "items"}, {"id", "9"}});
    CHECK(table.allowed_methods(t + "/items/9") == strings{"GET", "HEAD", "POST"});
  }
  CHECK(found(table, "/t25000/items") == "fallback");
  CHECK(found(table, "/t1/items/a/b") == "fallback");
  CHECK_FALSE(table.find("/t1/items/a/b", "POST"));

  CHECK(table.remove_function("get-12345") == 1);
  CHECK(table.size() == 4 * tenants);
  CHECK(found(table, "/t12345/items/abc") == "fallback");
  CHECK(found(table, "/t12346/items/abc") == "get-12346");
}

TEST_CASE("removals are incremental and a rebuild keeps every route and its order",
          "[route_table]") {
  fezz::route_table table;
  std::vector<fezz::route_table> snapshots;
  for (int i = 0; i < 1000; ++i) {
    table.add(make_route("GET", "/f/" + std::to_string(i) + "/:x", "fn" + std::to_string(i)));
    if (i % 250 == 0) {
      snapshots.push_back(table);  // shares storage with the table, then must not change
    }
  }
  for (int i = 0; i < 1000; i += 10) {
    for (int j = i; j < i + 7; ++j) {  // 700 removals: past the point where it rebuilds
      REQUIRE(table.remove("GET", "/f/" + std::to_string(j) + "/:x"));
    }
    if (i % 300 == 0) {
      snapshots.push_back(table);
    }
  }
  CHECK(table.size() == 300);
  CHECK_FALSE(table.remove("GET", "/f/0/:x"));
  const auto routes = table.routes();
  REQUIRE(routes.size() == 300);
  for (std::size_t k = 0; k < routes.size(); ++k) {
    const int i = static_cast<int>(k / 3) * 10 + 7 + static_cast<int>(k % 3);
    CHECK(routes[k].function_id == "fn" + std::to_string(i));  // insertion order kept
  }
  for (int i = 0; i < 1000; ++i) {
    const bool kept = i % 10 >= 7;
    CHECK(found(table, "/f/" + std::to_string(i) + "/y") == (kept ? "fn" + std::to_string(i) : ""));
  }
  // Every snapshot still answers as it did when it was taken.
  CHECK(found(snapshots.front(), "/f/0/y") == "fn0");
  CHECK(found(snapshots.front(), "/f/1/y") == "");
  CHECK(found(snapshots[4], "/f/999/y") == "fn999");
  CHECK(found(snapshots[4], "/f/3/y") == "");
  CHECK(snapshots[4].size() == 1000 - 7);
  CHECK(snapshots[3].size() == 751);
  table.add(make_route("GET", "/f/0/:x", "back"));
  CHECK(found(table, "/f/0/y") == "back");
  CHECK(table.routes().back().function_id == "back");
}
