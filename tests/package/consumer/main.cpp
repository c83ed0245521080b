// A user's program: one FEZZ_FUNCTION, checked through the registry, the route
// table, the control-plane store and a direct fetch. Deliberately leaves out
// <fezz/server.hpp> (tens of seconds to compile); returns non-zero on any mismatch.

#include <fezz/function.hpp>
#include <fezz/manifest.hpp>
#include <fezz/memory_store.hpp>
#include <fezz/route_table.hpp>

#include <spdlog/spdlog.h>
#include <boost/beast/http/verb.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

struct hello {
  FEZZ_FUNCTION(hello, .id = "hello", .path = "/hello/:name", .description = "greets");
  fezz::response fetch(const fezz::request& req, fezz::context& ctx) {
    return fezz::response::text("hello, " + std::string(req.param("name")) + " from " +
                                ctx.function_id());
  }
};

namespace {

int failures = 0;

void check(bool ok, std::string_view what) {
  if (!ok) {
    ++failures;
    std::cerr << "FAILED: " << what << '\n';
  }
}

}  // namespace

int main() {
  // The macro registered the function, with its compile-time manifest.
  const auto registrations = fezz::registered_functions();
  const auto reg = std::find_if(registrations.begin(), registrations.end(),
                                [](const auto& r) { return r.static_manifest.id == "hello"; });
  check(registrations.size() == 1, "exactly one registered function");
  check(reg != registrations.end(), "registered_functions() contains \"hello\"");
  if (reg == registrations.end()) {
    return 1;
  }
  check(reg->static_manifest.path == "/hello/:name", "registered manifest keeps its path");
  check(reg->static_manifest.method == "GET" && reg->static_manifest.version == "v1",
        "registered manifest has the defaults");

  // The control-plane store keeps the run-time copy of the manifest.
  fezz::memory_store store;
  store.register_function(fezz::function_entry(fezz::owned_manifest{hello::manifest}));
  const auto entry = store.get("hello");
  check(entry.has_value() && entry->manifest.path == "/hello/:name", "memory_store returns hello");
  check(store.list().size() == 1, "memory_store lists one function");
  if (!entry) {
    return 1;
  }

  // The route table routes a path to the function and binds its parameter.
  fezz::route_table routes;
  routes.add(fezz::route{entry->manifest.method, entry->manifest.path, entry->id()});
  const auto match = routes.find("/hello/pkg", "GET");
  check(match && match->matched->function_id == "hello", "/hello/pkg routes to hello");
  check(match && match->param("name") == "pkg", "route binds :name = pkg");
  check(!routes.find("/goodbye/pkg", "GET"), "/goodbye/pkg routes nowhere");
  check(!routes.find("/hello/pkg", "POST"), "POST /hello/pkg routes nowhere");
  if (!match) {
    return 1;
  }

  fezz::function_info info{fezz::owned_manifest{hello::manifest}, {}, spdlog::default_logger()};
  fezz::context ctx(info, std::chrono::steady_clock::now() + std::chrono::seconds(1));
  check(ctx.function_id() == "hello", "context names the function");

  // Calling the function type's fetch directly.
  fezz::request req(boost::beast::http::verb::get, "/hello/pkg");
  req.params(match->params);
  hello direct;
  const fezz::response res = direct.fetch(req, ctx);
  check(res.status_code() == 200, "direct fetch: status 200");
  check(res.body() == "hello, pkg from hello", "direct fetch: body");
  check(res.header("Content-Type").starts_with("text/plain"), "direct fetch: content type");

  // And through the registration's factory, as the host loads it.
  auto instance = reg->make();
  fezz::request req2(boost::beast::http::verb::get, "/hello/registry");
  req2.params({{"name", "registry"}});
  auto outcome = instance->fetch(req2, ctx);
  const auto* produced = std::get_if<fezz::response>(&outcome);
  check(produced != nullptr, "registered instance answers synchronously");
  check(produced && produced->body() == "hello, registry from hello", "registered instance: body");

  if (failures != 0) {
    std::cerr << failures << " check(s) failed\n";
    return 1;
  }
  std::cout << "fezz consumer: all checks passed\n";
  return 0;
}
