#include <fezz/detail/uri.hpp>

#include <catch2/catch.hpp>

using fezz::detail::find_query_value;
using fezz::detail::percent_decode;

TEST_CASE("percent_decode decodes escapes and keeps malformed ones as written", "[uri]") {
  CHECK(percent_decode("a%2Fb%2fc") == "a/b/c");
  CHECK(percent_decode("%E2%82%AC") == "\xE2\x82\xAC");
  CHECK(percent_decode("a%2Fb%zz%4") == "a/b%zz%4");
  CHECK(percent_decode("%4z%41") == "%4zA");
  CHECK(percent_decode("%") == "%");
  CHECK(percent_decode("%00") == std::string(1, '\0'));
}

TEST_CASE("'+' is a space only in form-style query strings", "[uri]") {
  CHECK(percent_decode("a+b") == "a+b");
  CHECK(percent_decode("a+b", true) == "a b");
  CHECK(percent_decode("a%2Bb", true) == "a+b");
}

TEST_CASE("find_query_value finds the first pair whose decoded name matches", "[uri]") {
  CHECK(find_query_value("a=1&b=2&a=3", "a") == "1");
  CHECK(find_query_value("a=1&b=2", "b") == "2");
  CHECK(find_query_value("flag&x=1", "flag") == "");
  CHECK(find_query_value("a%20b=c+d", "a b") == "c d");
  CHECK(find_query_value("x=1=2", "x") == "1=2");
  CHECK_FALSE(find_query_value("", "a").has_value());
  CHECK_FALSE(find_query_value("&&", "a").has_value());
  CHECK_FALSE(find_query_value("ab=1", "a").has_value());
}
