// Fuzzes fezz::route_table against a model: a plain list of routes in
// insertion order and a brute-force search written from the ranking rules in
// route_table.hpp, sharing no code with the trie (it decodes parameters with
// percent_decode, which uri_fuzz checks).
//
// Input: commands, one a line, fields separated by one space (any other line
// is skipped, so every input is valid):
//   + METHOD PATTERN FUNCTION_ID [PRIORITY]   add a route
//   - METHOD PATTERN                          remove one route
//   x FUNCTION_ID                             remove a function's routes
//   ? METHOD PATH                             look up PATH (the rest of the line)
//   c                                         copy the table and compare
//   0                                         clear the table
//
// Invariants checked (a violation traps):
//   - add throws std::invalid_argument exactly for an invalid pattern or method,
//     and then leaves the table unchanged; routes() equals the model (its size
//     after every command, every route after removals and at the end);
//   - remove and remove_function report what the model removes;
//   - find picks the model's best route (so its pattern really matches the path)
//     with the same decoded parameters, or nothing when the model has nothing;
//   - allowed_methods equals the model's: sorted, unique, and non-empty
//     whenever find succeeds for some method;
//   - a copy answers like the original and is independent of it;
//   - removing every route empties the table, which then works again.

#include <fezz/route_table.hpp>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
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

// The next non-empty '/'-separated segment of `text` from `pos` on ("" at the end).
std::string_view next_part(std::string_view text, std::size_t& pos) {
  while (pos < text.size() && text[pos] == '/') {
    ++pos;
  }
  const std::size_t start = pos;
  pos = std::min(text.find('/', pos), text.size());
  return text.substr(start, pos - start);
}

// The non-empty '/'-separated segments of `text`.
std::vector<std::string_view> segments_of(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t slash = std::min(text.find('/', start), text.size());
    if (slash > start) {
      out.push_back(text.substr(start, slash - start));
    }
    start = slash + 1;
  }
  return out;
}

bool is_capture(std::string_view segment) {
  return segment.front() == ':' || segment.front() == '*';
}

std::string_view name_of_capture(std::string_view segment) {
  return segment == "*" ? segment : segment.substr(1);
}

bool valid_pattern(std::string_view pattern) {
  if (pattern.empty() || pattern.front() != '/') {
    return false;
  }
  const auto segments = segments_of(pattern);
  std::vector<std::string_view> names;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const std::string_view segment = segments[i];
    if (segment == ":" || (segment.front() == '*' && i + 1 != segments.size())) {
      return false;
    }
    if (is_capture(segment)) {
      if (std::find(names.begin(), names.end(), name_of_capture(segment)) != names.end()) {
        return false;
      }
      names.push_back(name_of_capture(segment));
    }
  }
  return true;
}

bool valid_method(std::string_view method) {
  return !method.empty() && method.size() <= 16 &&
         std::all_of(method.begin(), method.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

std::string canonical(std::string_view pattern) {
  std::string out;
  for (const std::string_view segment : segments_of(pattern)) {
    out.append("/").append(segment);
  }
  return out.empty() ? "/" : out;
}

// How a pattern matches a path, as a string: for each pattern segment from the left '0'
// for a static one, '1' for a parameter, then '2' when the pattern ends with the path or
// '3' for a wildcard. Shapes compare in the trie's search order (most specific first);
// nullopt: no match. `path` is the path's segments.
std::optional<std::string> match(std::string_view pattern,
                                 const std::vector<std::string_view>& path) {
  std::string shape;
  std::size_t i = 0;
  std::size_t pos = 0;
  for (std::string_view segment = next_part(pattern, pos); !segment.empty();
       segment = next_part(pattern, pos)) {
    if (segment.front() == '*') {
      return shape + '3';
    }
    if (i >= path.size()) {
      return std::nullopt;
    }
    if (segment.front() == ':') {
      shape += '1';
    } else if (segment == path[i]) {
      shape += '0';
    } else {
      return std::nullopt;
    }
    ++i;
  }
  if (i != path.size()) {
    return std::nullopt;
  }
  return shape + '2';
}

// The decoded values a matching pattern captures from the path's segments.
fezz::path_params captures(std::string_view pattern, const std::vector<std::string_view>& path) {
  fezz::path_params params;
  std::size_t i = 0;
  std::size_t pos = 0;
  for (std::string_view segment = next_part(pattern, pos); !segment.empty();
       segment = next_part(pattern, pos)) {
    if (segment.front() == '*') {
      std::string rest;
      for (std::size_t j = i; j < path.size(); ++j) {
        rest += (j == i ? "" : "/") + fezz::detail::percent_decode(path[j]);
      }
      params.emplace_back(std::string(name_of_capture(segment)), std::move(rest));
      break;
    }
    if (segment.front() == ':') {
      params.emplace_back(std::string(name_of_capture(segment)),
                          fezz::detail::percent_decode(path[i]));
    }
    ++i;
  }
  return params;
}

// Lower is better; nullopt when the route does not serve `method`.
std::optional<int> method_rank(std::string_view route_method, std::string_view method) {
  if (route_method == method) {
    return 0;
  }
  if (method == "HEAD" && route_method == "GET") {
    return 1;
  }
  if (route_method == "ANY") {
    return 2;
  }
  return std::nullopt;
}

struct model {
  std::vector<fezz::route> routes;  // insertion order
  std::vector<std::string> keys;    // each route's canonical pattern

  std::size_t index_of(std::string_view method, std::string_view pattern) const {
    const std::string key = canonical(pattern);
    for (std::size_t i = 0; i < routes.size(); ++i) {
      if (routes[i].method == method && keys[i] == key) {
        return i;
      }
    }
    return routes.size();
  }

  void add(fezz::route r) {
    if (const std::size_t i = index_of(r.method, r.pattern); i < routes.size()) {
      routes[i] = std::move(r);
    } else {
      keys.push_back(canonical(r.pattern));
      routes.push_back(std::move(r));
    }
  }

  void erase(std::size_t i) {
    routes.erase(routes.begin() + static_cast<std::ptrdiff_t>(i));
    keys.erase(keys.begin() + static_cast<std::ptrdiff_t>(i));
  }

  std::size_t erase_function(std::string_view id) {
    std::size_t removed = 0;
    for (std::size_t i = routes.size(); i-- > 0;) {
      if (routes[i].function_id == id) {
        erase(i);
        ++removed;
      }
    }
    return removed;
  }

  void clear() {
    routes.clear();
    keys.clear();
  }

  // Priority, then specificity, then method, then insertion order: the winner's index
  // and captures.
  std::optional<std::pair<std::size_t, fezz::path_params>> find(std::string_view path,
                                                                std::string_view method) const {
    const auto segments = segments_of(path);
    std::optional<std::size_t> best;
    std::string best_shape;
    int best_rank = 0;
    for (std::size_t i = 0; i < routes.size(); ++i) {
      const auto rank = method_rank(routes[i].method, method);
      auto shape = rank ? match(keys[i], segments) : std::nullopt;
      if (!shape) {
        continue;
      }
      const bool better = !best || routes[i].priority > routes[*best].priority ||
                          (routes[i].priority == routes[*best].priority &&
                           (*shape < best_shape || (*shape == best_shape && *rank < best_rank)));
      if (better) {
        best = i;
        best_shape = std::move(*shape);
        best_rank = *rank;
      }
    }
    if (!best) {
      return std::nullopt;
    }
    return std::pair{*best, captures(keys[*best], segments)};
  }

  std::vector<std::string> allowed_methods(std::string_view path) const {
    const auto segments = segments_of(path);
    std::vector<std::string> out;
    for (std::size_t i = 0; i < routes.size(); ++i) {
      if (match(keys[i], segments)) {
        out.push_back(routes[i].method);
        if (routes[i].method == "GET") {
          out.push_back("HEAD");
        }
      }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }
};

void check_equal(const fezz::route_table& table, const model& expected) {
  check(table.size() == expected.routes.size());
  check(table.empty() == expected.routes.empty());
  check(table.routes() == expected.routes);
}

void check_lookup(const fezz::route_table& table, const model& expected, std::string_view path,
                  std::string_view method) {
  const auto found = table.find(path, method);
  const auto wanted = expected.find(path, method);
  check(found.has_value() == wanted.has_value());
  if (found) {
    check(*found->matched == expected.routes[wanted->first]);
    check(found->params == wanted->second);
  }
  const auto allowed = table.allowed_methods(path);
  check(allowed == expected.allowed_methods(path));
  check(std::is_sorted(allowed.begin(), allowed.end()));
  check(std::adjacent_find(allowed.begin(), allowed.end()) == allowed.end());
  check(!found || !allowed.empty());
}

// Both answer alike for `path`: the same route (by value; copies share storage until
// one of them is written, so they may point at the same one).
void check_same_answers(const fezz::route_table& a, const fezz::route_table& b,
                        std::string_view path, std::string_view method) {
  const auto in_a = a.find(path, method);
  const auto in_b = b.find(path, method);
  check(in_a.has_value() == in_b.has_value());
  if (in_a) {
    check(*in_a->matched == *in_b->matched && in_a->params == in_b->params);
  }
  check(a.allowed_methods(path) == b.allowed_methods(path));
}

// The next field of a command line: up to the next space (one space separates fields).
std::string_view next_field(std::string_view& line) {
  const std::size_t space = std::min(line.find(' '), line.size());
  const std::string_view field = line.substr(0, space);
  line.remove_prefix(std::min(space + 1, line.size()));
  return field;
}

int to_priority(std::string_view text) {
  int value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  fezz::route_table table;
  model expected;
  // What was looked up so far, asked again of every copy.
  std::vector<std::pair<std::string, std::string>> lookups;

  while (!input.empty()) {
    const std::size_t newline = std::min(input.find('\n'), input.size());
    std::string_view line = input.substr(0, newline);
    input.remove_prefix(std::min(newline + 1, input.size()));
    const std::string_view command = next_field(line);

    if (command == "+") {
      fezz::route r;
      r.method = next_field(line);
      r.pattern = next_field(line);
      r.function_id = next_field(line);
      r.priority = to_priority(next_field(line));
      const bool valid = valid_pattern(r.pattern) && valid_method(r.method);
      if (valid && expected.routes.size() >= 32) {
        continue;  // lookups stay cheap
      }
      try {
        table.add(r);
        check(valid);
        expected.add(std::move(r));
      } catch (const std::invalid_argument&) {
        check(!valid);
      }
    } else if (command == "-") {
      const std::string_view method = next_field(line);
      const std::string_view pattern = next_field(line);
      const std::size_t i =
          valid_pattern(pattern) ? expected.index_of(method, pattern) : expected.routes.size();
      const bool removed = table.remove(method, pattern);
      check(removed == (i < expected.routes.size()));
      if (removed) {
        expected.erase(i);
      }
    } else if (command == "x") {
      const std::string_view id = next_field(line);
      const std::size_t removed = expected.erase_function(id);
      check(table.remove_function(id) == removed);
    } else if (command == "?") {
      const std::string_view method = next_field(line);
      const std::string_view path = line;  // the rest of the line, spaces included
      check_lookup(table, expected, path, method);
      if (lookups.size() < 16) {
        lookups.emplace_back(method, path);
      }
    } else if (command == "c") {
      fezz::route_table copy = table;
      check_equal(copy, expected);
      for (const auto& [method, path] : lookups) {
        check_same_answers(table, copy, path, method);
      }
      // The copy is a value of its own: changing it leaves the original as it was,
      // and so does removing from it (which writes the storage they shared).
      model copy_expected = expected;
      copy.add({"GET", "/copy/:only", "f-copy", 5});
      copy_expected.add({"GET", "/copy/:only", "f-copy", 5});
      if (!copy_expected.routes.empty()) {
        const fezz::route first = copy_expected.routes.front();
        check(copy.remove(first.method, first.pattern));
        copy_expected.erase(0);
      }
      check_equal(copy, copy_expected);
      check_lookup(copy, copy_expected, "/copy/1", "GET");
      check_lookup(table, expected, "/copy/1", "GET");
      check_equal(table, expected);
      const fezz::route_table moved = std::move(copy);
      check_equal(moved, copy_expected);
    } else if (command == "0") {
      table.clear();
      expected.clear();
    }
    // routes() copies every route: compared in full after removals (which rebuild the
    // trie) and at the end, or each check would cost more than all the rest.
    check(table.size() == expected.routes.size() && table.empty() == expected.routes.empty());
    if (command == "-" || command == "x") {
      check_equal(table, expected);
    }
  }
  check_equal(table, expected);

  // Removing every route, one by one or by function, empties the table.
  while (!expected.routes.empty()) {
    const fezz::route r = expected.routes.back();
    if (expected.routes.size() % 2 == 0) {
      check(table.remove(r.method, r.pattern));
      expected.erase(expected.routes.size() - 1);
    } else {
      const std::size_t removed = expected.erase_function(r.function_id);
      check(table.remove_function(r.function_id) == removed);
    }
    check(table.size() == expected.routes.size());
    if (expected.routes.size() % 8 == 0) {
      check_equal(table, expected);
    }
  }
  check(table.empty() && table.size() == 0 && table.routes().empty());
  for (const auto& [method, path] : lookups) {
    check(!table.find(path, method) && table.allowed_methods(path).empty());
  }
  // An emptied table is as good as a new one.
  table.add({"GET", "/a/:id", "f0", 0});
  const auto again = table.find("/a/1", "HEAD");
  check(again && again->param("id") == "1");
  return 0;
}
