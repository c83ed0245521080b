// Must not compile: FEZZ_FUNCTION names another struct than the one it is in
// (a copy-and-paste slip that would register `hello` a second time under
// `world`'s manifest). CTest checks that the compiler says why.

#include <fezz/function.hpp>

struct hello {
  FEZZ_FUNCTION(hello, .id = "hello", .path = "/hello");
  fezz::response fetch(const fezz::request&, fezz::context&) const { return {}; }
};

struct world {
  FEZZ_FUNCTION(hello, .id = "world", .path = "/world");
  fezz::response fetch(const fezz::request&, fezz::context&) const { return {}; }
};
