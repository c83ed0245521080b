#include <fezz/store_format.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("store keys are built from the prefix", "[store_format]") {
  CHECK(fezz::default_store_prefix == "/fezz/");
  CHECK(fezz::function_key("/fezz/", "hello") == "/fezz/functions/hello");
  CHECK(fezz::node_key("/c1/", "node-1") == "/c1/nodes/node-1");
  CHECK(fezz::functions_prefix("/p/") == "/p/functions/");
  CHECK(fezz::nodes_prefix("/p/") == "/p/nodes/");
}

TEST_CASE("an entry round-trips through its JSON", "[store_format]") {
  auto entry = fezz::function_entry(fezz::owned_manifest("hello", "v2", "POST", "/hello/:name"))
                   .on_node("n1")
                   .on_node("n2")
                   .with_env("GREETING", "hi \"there\"\n");
  entry.manifest.timeout = 7s;
  entry.manifest.description = "says hello";
  entry.manifest.max_concurrency = 8;
  entry.revision = 99;  // not part of the value

  const auto text = fezz::to_json(entry);
  CHECK(text == R"({"description":"says hello","env":{"GREETING":"hi \"there\"\n"},"id":"hello",)"
                R"("max_concurrency":8,"method":"POST","nodes":["n1","n2"],"path":"/hello/:name",)"
                R"("timeout":7,"version":"v2"})");
  const auto parsed = fezz::parse_function_entry(text, "hello");
  REQUIRE(parsed.ok());
  CHECK(parsed.error().empty());
  CHECK(parsed.value() == entry);
  CHECK(parsed.value().revision == 0);
  CHECK(parsed.value().manifest.timeout == 7s);
}

TEST_CASE("an entry's absent fields take the manifest's defaults", "[store_format]") {
  const auto parsed = fezz::parse_function_entry(R"({"id":"x"})");
  REQUIRE(parsed);
  const auto& m = parsed.value().manifest;
  const fezz::manifest defaults{.id = "x"};
  CHECK(m == fezz::owned_manifest(defaults));
  CHECK(m.version == "v1");
  CHECK(m.method == "GET");
  CHECK(m.path == "/");
  CHECK(m.timeout == 30s);
  CHECK(m.description.empty());
  CHECK(parsed.value().nodes.empty());
  CHECK(parsed.value().env.empty());

  // The id may come from the key alone; nulls count as absent; unknown fields are ignored.
  const auto from_key = fezz::parse_function_entry(
      R"({"path":"/k","nodes":null,"max_concurrency":4,"future":{"a":[1,2]}})", "keyed");
  REQUIRE(from_key);
  CHECK(from_key.value().id() == "keyed");
  CHECK(from_key.value().manifest.path == "/k");
  CHECK(from_key.value().manifest.max_concurrency == 4);

  const auto duplicates = fezz::parse_function_entry(R"({"id":"d","nodes":["a","b","a"]})");
  REQUIRE(duplicates);
  CHECK(duplicates.value().nodes == std::vector<std::string>{"a", "b"});
}

TEST_CASE("an invalid entry is refused with a precise one-line reason", "[store_format]") {
  auto reason = [](std::string_view text, std::string_view key = {}) {
    const auto parsed = fezz::parse_function_entry(text, key);
    CHECK_FALSE(parsed.ok());
    CHECK(parsed.error().find('\n') == std::string::npos);
    return parsed.error();
  };
  CHECK(reason("{\"id\":") == "not JSON (syntax error at byte 7)");  // at the end
  CHECK(reason("") == "not JSON (syntax error at byte 1)");
  CHECK(reason("hello\nworld") == "not JSON (syntax error at byte 1)");
  CHECK(reason("[1,2]") == "not a JSON object");
  CHECK(reason(R"({"id":"x","max_concurrency":-1})") ==
        "field 'max_concurrency' must be a whole number from 0 (no limit) to 4294967295");
  CHECK(reason(R"({"id":"x","max_concurrency":4294967296})") ==
        "field 'max_concurrency' must be a whole number from 0 (no limit) to 4294967295");
  CHECK(reason(R"({"id":"a","timeout":1e999})") == "not JSON (a number out of range)");
  CHECK(reason("\"text\"") == "not a JSON object");
  CHECK(reason(R"({"id":7})") == "field 'id' must be a string");
  CHECK(reason(R"({"id":"a","method":["GET"]})") == "field 'method' must be a string");
  CHECK(reason(R"({"id":"a","timeout":"30"})") ==
        "field 'timeout' must be a whole number of seconds");
  CHECK(reason(R"({"id":"a","timeout":1.5})") ==
        "field 'timeout' must be a whole number of seconds");
  CHECK(reason(R"({"id":"a","timeout":99999999999})") ==
        "field 'timeout' must be at most 31536000 seconds");
  CHECK(reason(R"({"id":"a","timeout":0})") == "invalid manifest: timeout must be positive");
  CHECK(reason(R"({"id":"a","timeout":-3})") == "invalid manifest: timeout must be positive");
  CHECK(reason(R"({"id":"a","nodes":"n1"})") == "field 'nodes' must be an array of node names");
  CHECK(reason(R"({"id":"a","nodes":["n1",2]})") == "field 'nodes' must be an array of node names");
  CHECK(reason(R"({"id":"a","env":[]})") == "field 'env' must be an object of strings");
  CHECK(reason(R"({"id":"a","env":{"A":"1","B":2}})") ==
        "field 'env' must be an object of strings ('B' is not)");
  CHECK(reason(R"({"id":"a","path":"nope"})") == "invalid manifest: path must start with '/'");
  CHECK(reason(R"({"id":"a","method":"get"})") ==
        "invalid manifest: method must be an upper-case HTTP method token or ANY");
  CHECK(reason(R"({"version":"v1"})") == "invalid manifest: id must not be empty");
  CHECK(reason(R"({"id":"b"})", "a") == "field 'id' is 'b' but the key names 'a'");
  CHECK(reason(R"({"id":"b\nc"})", "a") == R"(field 'id' is 'b\x0ac' but the key names 'a')");
  CHECK(reason(R"({"id":")" + std::string(100, 'x') + "\"}", "a") ==
        "field 'id' is '" + std::string(80, 'x') + "...' but the key names 'a'");
}

TEST_CASE("an entry's module names its bytes by SHA-256 and a path", "[store_format]") {
  const std::string sha(64, 'a');
  auto entry = fezz::function_entry(fezz::owned_manifest("greeting", "v1", "GET", "/greeting"));
  CHECK(fezz::to_json(entry).find("module") == std::string::npos);  // compiled in: no field
  entry.module = fezz::module_source{sha, "/srv/modules/greeting.so"};
  const auto text = fezz::to_json(entry);
  const std::string written = R"("module":{"path":"/srv/modules/greeting.so","sha256":")" + sha;
  CHECK(text.find(written) != std::string::npos);
  const auto back = fezz::parse_function_entry(text, "greeting");
  REQUIRE(back);
  CHECK(back.value() == entry);
  entry.module->sha256[0] = 'b';
  CHECK_FALSE(back.value() == entry);  // the module is part of the value

  const std::string shape =
      R"(field 'module' must be {"sha256": 64 lowercase hex digits, "path": a file or absent})";
  const std::string bad_modules[] = {
      R"("m")",
      R"({"path":"/m.so"})",
      R"({"sha256":")" + sha + R"(","path":7})",
      R"({"sha256":")" + std::string(63, 'a') + R"(","path":"/m.so"})",
      R"({"sha256":")" + std::string(64, 'A') + R"(","path":"/m.so"})",
      R"({"sha256":7,"path":"/m.so"})"};
  for (const auto& bad : bad_modules) {
    const auto parsed = fezz::parse_function_entry(R"({"id":"a","module":)" + bad + "}");
    CHECK_FALSE(parsed.ok());
    CHECK(parsed.error() == shape);
  }
  CHECK(fezz::parse_function_entry(R"({"id":"a","module":null})").value().module == std::nullopt);

  // No path: the bytes are in the store (fezzctl deploy); written without the field.
  entry.module = fezz::module_source{sha, ""};
  CHECK(fezz::to_json(entry).find(R"("module":{"sha256":")" + sha + R"("})") != std::string::npos);
  CHECK(fezz::parse_function_entry(fezz::to_json(entry)).value() == entry);
}

TEST_CASE("a module record says how many chunks hold a module's bytes", "[store_format]") {
  using fezz::module_record;
  const auto chunk = fezz::module_chunk_bytes;
  CHECK(fezz::module_chunks_for(0) == 0);
  CHECK(fezz::module_chunks_for(1) == 1);
  CHECK(fezz::module_chunks_for(chunk) == 1);
  CHECK(fezz::module_chunks_for(chunk + 1) == 2);
  const module_record record{chunk * 2 + 5, 3};
  CHECK(fezz::parse_module_record(fezz::to_json(record)).value() == record);
  CHECK(fezz::module_key("/fezz/", "ab") == "/fezz/code/ab");
  CHECK(fezz::module_chunk_key("/fezz/", "ab", 2) == "/fezz/code/ab/2");
  CHECK(fezz::module_key("/fezz/", "ab") < fezz::functions_prefix("/fezz/"));  // not followed

  const auto reason = [](std::string_view text) {
    const auto parsed = fezz::parse_module_record(text);
    return parsed ? std::string("parsed") : parsed.error();
  };
  CHECK(reason(R"({"size":10,"chunks":2})") == "a module record of 10 bytes must have 1 chunks");
  CHECK(reason(R"({"size":18446744073709551615,"chunks":1})").find("must have") !=
        std::string::npos);
  const std::string shape = R"(a module record must be {"size": bytes, "chunks": a count})";
  CHECK(reason(R"({"size":-1,"chunks":0})") == shape);
  CHECK(reason(R"({"size":1})") == shape);
  CHECK(reason(R"({"size":"1","chunks":1})") == shape);
  CHECK(reason("[]") == "not a JSON object");
}

TEST_CASE("an entry's versions each name a module and a weight", "[store_format]") {
  const std::string sha1(64, 'a');
  const std::string sha2(64, 'b');
  auto entry = fezz::function_entry(fezz::owned_manifest("greeting", "1.0.0", "GET", "/greeting"));
  entry.versions = {{"v1", 90, {sha1, "/m/v1.so"}}, {"v2", 10, {sha2, "/m/v2.so"}}};
  const auto text = fezz::to_json(entry);
  CHECK(text.find(R"("versions":[{"module":{"path":"/m/v1.so","sha256":")" + sha1 +
                  R"("},"version":"v1","weight":90},)") != std::string::npos);
  const auto back = fezz::parse_function_entry(text, "greeting");
  REQUIRE(back);
  CHECK(back.value() == entry);
  entry.versions[1].weight = 20;
  CHECK_FALSE(back.value() == entry);  // the weights are part of the value

  // A weight left out is 1; 0 is allowed (only requests naming the version reach it).
  const auto module = R"("module":{"sha256":")" + sha1 + R"(","path":"/m.so"})";
  const auto parsed =
      fezz::parse_function_entry(R"({"id":"a","versions":[{"version":"v1",)" + module +
                                 R"(},{"version":"v2","weight":0,)" + module + "}]}");
  REQUIRE(parsed);
  CHECK(parsed.value().versions.at(0).weight == 1);
  CHECK(parsed.value().versions.at(1).weight == 0);

  const auto reason = [&](const std::string& versions) {
    const auto p = fezz::parse_function_entry(R"({"id":"a","versions":)" + versions + "}");
    return p.ok() ? std::string("parsed") : p.error();
  };
  const std::string shape =
      R"(field 'versions' must be an array of 1 to 16 {"version": a name, "weight": 0 to 1000000, "module": {"sha256", "path"}})";
  const auto one = [&](const std::string& name, const std::string& weight) {
    return R"({"version":")" + name + R"(","weight":)" + weight + "," + module + "}";
  };
  CHECK(reason("[]") == shape);
  CHECK(reason(R"({"v1":1})") == shape);
  CHECK(reason(R"([{"version":"v1"}])") == shape);  // no module
  CHECK(reason(R"([{"version":"v1","module":{"sha256":"x","path":"/m.so"}}])") == shape);
  CHECK(reason(R"([{"weight":1,)" + module + "}]") ==
        R"(field 'versions': version "" must be 1 to 64 of A-Z a-z 0-9 . _ -)");
  std::string seventeen = "[";
  for (int i = 0; i < 17; ++i) {
    seventeen += (i == 0 ? "" : ",") + one("v" + std::to_string(i), "1");
  }
  CHECK(reason(seventeen + "]") == shape);
  CHECK(reason("[" + one("v 1", "1") + "]") ==
        R"(field 'versions': version "v 1" must be 1 to 64 of A-Z a-z 0-9 . _ -)");
  CHECK(reason("[" + one(std::string(65, 'v'), "1") + "]").find("must be 1 to 64") !=
        std::string::npos);
  const std::string weight_reason =
      R"(field 'versions': the weight of "v1" must be a whole number from 0 to 1000000)";
  CHECK(reason("[" + one("v1", "-1") + "]") == weight_reason);
  CHECK(reason("[" + one("v1", "1.5") + "]") == weight_reason);
  CHECK(reason("[" + one("v1", "1000001") + "]") == weight_reason);
  CHECK(reason("[" + one("v1", "1000000") + "]") == "parsed");
  CHECK(reason("[" + one("v1", "1") + "," + one("v1", "2") + "]") ==
        R"(field 'versions': version "v1" is listed twice)");
  CHECK(fezz::parse_function_entry(R"({"id":"a",)" + module + R"(,"versions":[)" + one("v1", "1") +
                                   "]}")
            .error() ==
        "fields 'module' and 'versions' exclude each other: one module, or several versions");
}

TEST_CASE("to_json refuses text that is not UTF-8", "[store_format]") {
  auto entry = fezz::function_entry(fezz::owned_manifest("bad", "v1", "GET", "/"));
  entry.with_env("K", std::string("\xff\xfe"));
  CHECK_THROWS_AS(fezz::to_json(entry), fezz::store_error);
  CHECK_FALSE(fezz::parse_function_entry("{\"id\":\"\xff\"}").ok());
}

TEST_CASE("a node record round-trips through its JSON", "[store_format]") {
  const fezz::node_record node{"node-1", "http://127.0.0.1:8080", "draining",
                               "2026-12-01T21:30:00Z", "0.1.0"};
  const auto text = fezz::to_json(node);
  CHECK(text == R"({"address":"http://127.0.0.1:8080","fezz_version":"0.1.0",)"
                R"("started":"2026-12-01T21:30:00Z","state":"draining"})");
  const auto parsed = fezz::parse_node_record(text, "node-1");
  REQUIRE(parsed);
  CHECK(parsed.value() == node);

  const auto minimal = fezz::parse_node_record(R"({"address":"x","extra":true})", "n");
  REQUIRE(minimal);
  CHECK(minimal.value().state == "serving");
  CHECK(minimal.value().name == "n");

  CHECK(fezz::parse_node_record("nope", "n").error() == "not JSON (syntax error at byte 2)");
  CHECK(fezz::parse_node_record("3", "n").error() == "not a JSON object");
  CHECK(fezz::parse_node_record(R"({"address":1})", "n").error() ==
        "field 'address' must be a string");
  CHECK(fezz::parse_node_record(R"({"state":"gone"})", "n").error() ==
        R"(field 'state' must be "serving" or "draining")");
}
