// The module of bench/modules.py: fezz_example's compiled-in `hello`
// (examples/fezz_example/main.cpp), the same lines under another id and path.
// Copied, not shared: the example keeps it in main.cpp, which a module cannot
// include. Keep the body identical to the example's, or the bench compares two
// different functions. The path has the length of /hello, so parsing it and
// finding its route cost the same: /hello-module's 7 more characters cost about
// 290 instructions per request (callgrind), more than the module's own cost.
#include <fezz/function.hpp>

#include <fmt/format.h>

namespace bench {

struct hello_module {
  FEZZ_FUNCTION(hello_module, .id = "hello_module", .path = "/hallo",
                .description = "Greets X-Name or the World (fezz_example's hello, as a module)");
  fezz::response fetch(const fezz::request& req, fezz::context&) const {
    return fezz::response::text(fmt::format("Hello, {}!", req.header("X-Name", "World")));
  }
};

}  // namespace bench
