// Fuzzes the request-target helpers: fezz::detail::percent_decode and
// find_query_value, and fezz::request's split of a target into path and query.
//
// Input layout: the first byte chooses the options, the rest is the text (a
// query string or a target). A seed is one option byte, then the text.
//
// Invariants checked (a violation traps):
//   - percent_decode is never longer than its input, equals a plain reference
//     decoder, and is the identity on text without '%' (and '+' in form mode);
//   - decoding a text in which every byte is escaped gives back the bytes;
//   - append_decoded keeps what was in its output;
//   - find_query_value agrees with a reference built from the documented rule,
//     and finds each name of a query built from escaped pairs with its first value;
//   - a target is its path, then '?' and its query when it has one.

#include <fezz/detail/uri.hpp>
#include <fezz/request.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

void check(bool invariant) {
  if (!invariant) {
    __builtin_trap();
  }
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int hex_value(char c) {
  if (c <= '9') {
    return c - '0';
  }
  return (c | 0x20) - 'a' + 10;
}

// The rule as the header states it, written independently: "%XX" with two hex digits
// is one byte; anything else is kept as written.
std::string reference_decode(std::string_view in, bool plus_as_space) {
  std::string out;
  std::size_t i = 0;
  while (i < in.size()) {
    if (in[i] == '%' && in.size() - i >= 3 && is_hex(in[i + 1]) && is_hex(in[i + 2])) {
      out += static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2]));
      i += 3;
    } else {
      out += plus_as_space && in[i] == '+' ? ' ' : in[i];
      i += 1;
    }
  }
  return out;
}

// Every byte as "%XX", in the given case.
std::string escape_all(std::string_view in, bool upper_case) {
  const char* digits = upper_case ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (const char c : in) {
    const auto byte = static_cast<unsigned char>(c);
    out += '%';
    out += digits[byte >> 4];
    out += digits[byte & 15];
  }
  return out;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (;;) {
    const auto at = text.find(separator);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) {
      return parts;
    }
    text.remove_prefix(at + 1);
  }
}

// "The decoded value of the first name=value pair whose decoded name is `name`; "" for a
// bare name." Only for non-empty names: whether "a=1&" holds an empty pair is moot.
std::optional<std::string> reference_query_value(std::string_view query, std::string_view name) {
  if (query.empty()) {
    return std::nullopt;
  }
  for (const std::string_view pair : split(query, '&')) {
    const auto eq = pair.find('=');
    if (reference_decode(pair.substr(0, eq), true) == name) {
      return eq == std::string_view::npos ? std::string()
                                          : reference_decode(pair.substr(eq + 1), true);
    }
  }
  return std::nullopt;
}

void check_percent_decode(std::string_view text) {
  for (const bool plus_as_space : {false, true}) {
    const std::string decoded = fezz::detail::percent_decode(text, plus_as_space);
    check(decoded.size() <= text.size());
    check(decoded == reference_decode(text, plus_as_space));
    if (text.find('%') == std::string_view::npos) {
      std::string expected(text);
      if (plus_as_space) {
        std::replace(expected.begin(), expected.end(), '+', ' ');
      }
      check(decoded == expected);
    }
    std::string appended = "kept";
    fezz::detail::append_decoded(appended, text, plus_as_space);
    check(appended == "kept" + decoded);
    check(fezz::detail::percent_decode(escape_all(text, plus_as_space), plus_as_space) == text);
  }
}

void check_query(std::string_view query) {
  // Names to look up: the decoded names of the first pairs and of the last, and one surely
  // absent. Each lookup reads the whole query: more would make long inputs slow.
  const auto pairs = split(query, '&');
  std::vector<std::string> names;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    if (i < 4 || i + 1 == pairs.size()) {
      const std::string_view pair = pairs[i];
      names.push_back(fezz::detail::percent_decode(pair.substr(0, pair.find('=')), true));
    }
  }
  names.push_back(std::string(query) + "\x01" + "absent");
  for (const std::string& name : names) {
    if (name.empty()) {
      continue;
    }
    const auto found = fezz::detail::find_query_value(query, name);
    check(found == reference_query_value(query, name));
    check(!found || found->size() <= query.size());
  }
}

// A query from escaped pairs: each name is found with the value of its first pair.
void check_built_query(FuzzedDataProvider& provider) {
  std::vector<std::pair<std::string, std::string>> pairs;
  std::string query;
  while (provider.remaining_bytes() > 0 && pairs.size() < 16) {
    auto name = provider.ConsumeRandomLengthString(16);
    auto value = provider.ConsumeRandomLengthString(16);
    if (!query.empty()) {
      query += '&';
    }
    query += escape_all(name, pairs.size() % 2 == 0) + '=' + escape_all(value, true);
    pairs.emplace_back(std::move(name), std::move(value));
  }
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const std::string& name = pairs[i].first;
    std::size_t first = 0;
    while (pairs[first].first != name) {
      ++first;
    }
    check(fezz::detail::find_query_value(query, name) == pairs[first].second);
  }
}

void check_target(std::string_view target) {
  if (target.empty()) {
    return;  // Beast keeps no empty target
  }
  const fezz::request request(fezz::http::verb::get, target);
  check(request.target() == target);
  check(request.path().find('?') == std::string_view::npos);
  if (target.find('?') == std::string_view::npos) {
    check(request.path() == target && request.query().empty());
  } else {
    check(std::string(request.path()) + '?' + std::string(request.query()) == target);
  }
  const auto first_pair = split(request.query(), '&').front();
  const std::string name =
      fezz::detail::percent_decode(first_pair.substr(0, first_pair.find('=')), true);
  if (!name.empty()) {
    check(request.query_param(name) == fezz::detail::find_query_value(request.query(), name));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  check_percent_decode(text);
  check_query(text.substr(0, 256));  // longer queries find nothing new, only slower
  check_target(text);
  if (data[0] & 1) {
    FuzzedDataProvider provider(data + 1, size - 1);
    check_built_query(provider);
  }
  return 0;
}
