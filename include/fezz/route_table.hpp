#pragma once

// The route table: (method, path) -> the best route and its path parameters.
//
// A plain value type, like the standard containers: not internally synchronized.
// The server publishes immutable copies (copy-on-write), so reads need no lock.
// Depends only on the standard library, <fezz/manifest.hpp> and its own detail/ parts.
//
// Patterns: "/users" (static), "/users/:id" (one-segment parameter), "/static/*"
// and "/files/*rest" (tail wildcard: zero or more remaining segments).
// Paths and patterns are split on '/'; empty segments are ignored.
//
// Ranking among routes that match the path and the method:
//   1. higher priority;
//   2. more specific, compared segment by segment from the left: static beats
//      parameter beats wildcard; a pattern that ends exactly where the path ends
//      beats a wildcard that matches zero segments there (so "/api" is not
//      shadowed by "/api/*"), and a longer wildcard pattern beats a shorter one;
//   3. method: the exact method, then (for HEAD requests) GET, then ANY;
//   4. earlier insertion.
//
// Parameter and wildcard values are percent-decoded segment by segment; a malformed
// escape ("%zz", "%4") is kept as written. '+' is not a space.
// Static segments compare against the raw path segment, case-sensitively.

#include <fezz/detail/cow_vector.hpp>
#include <fezz/detail/route_pattern.hpp>
#include <fezz/detail/route_trie.hpp>
#include <fezz/detail/uri.hpp>
#include <fezz/manifest.hpp>
#include <fezz/path_params.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace fezz {

struct route {
  std::string method;  // an upper-case method token, or "ANY" for every method
  std::string pattern;
  std::string function_id;
  int priority = 0;  // higher wins; ties are broken by specificity

  friend bool operator==(const route&, const route&) = default;
};

struct route_match {
  const route* matched = nullptr;  // into the table; valid until it is modified or destroyed
  path_params params;

  // The value of a parameter, or "" if the route has no such parameter.
  std::string_view param(std::string_view name) const noexcept { return find_param(params, name); }
};

class route_table {
 public:
  // Adds `r`, replacing the route with the same method and (canonical) pattern, which
  // keeps its place in insertion order. Throws std::invalid_argument for a bad pattern
  // or method; the table is then unchanged.
  void add(route r) {
    if (const std::string_view problem = detail::pattern_problem(r.pattern); !problem.empty()) {
      throw std::invalid_argument("fezz::route_table: invalid pattern \"" + r.pattern +
                                  "\": " + std::string(problem));
    }
    if (!is_valid_method(r.method)) {
      throw std::invalid_argument("fezz::route_table: invalid method \"" + r.method +
                                  "\": must be an upper-case HTTP method token or ANY");
    }
    std::string key = detail::canonical_pattern(r.pattern);
    const std::uint8_t method = detail::method_code(r.method);
    // Nodes made here and then left without a route are harmless, should a later step throw.
    detail::route_refs& list = node_list_for(key, r.priority, method);
    for (detail::route_ref& ref : list) {
      if (entries_[ref.index].value.method == r.method && entries_[ref.index].key == key) {
        ref.priority = r.priority;
        entries_.mutate(ref.index).value = std::move(r);
        return;
      }
    }
    const auto index = static_cast<std::uint32_t>(entries_.size());
    entries_.push_back(entry{std::move(r), std::move(key), true});
    try {
      list.push_back({index, entries_[index].value.priority, method});
    } catch (...) {
      entries_.mutate(index).live = false;
      ++dead_;
      throw;
    }
  }

  // Removes every route of `function_id`; returns how many were removed.
  std::size_t remove_function(std::string_view function_id) {
    std::size_t removed = 0;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      const entry& e = entries_[i];
      if (e.live && e.value.function_id == function_id) {
        removed += remove_canonical(std::string(e.value.method), std::string(e.key)) ? 1 : 0;
      }
    }
    return removed;
  }

  // Removes the route with this method and pattern; false if there is none.
  bool remove(std::string_view method, std::string_view pattern) {
    if (!detail::pattern_problem(pattern).empty()) {
      return false;
    }
    return remove_canonical(method, detail::canonical_pattern(pattern));
  }

  void clear() noexcept {
    entries_.clear();
    nodes_.clear();
    edges_.clear();
    dead_ = 0;
  }

  // The route with this method and pattern, or null; valid until the table changes.
  const route* get(std::string_view method, std::string_view pattern) const {
    if (!detail::pattern_problem(pattern).empty()) {
      return nullptr;
    }
    const auto index = index_of(method, detail::canonical_pattern(pattern));
    return index ? &entries_[*index].value : nullptr;
  }

  std::size_t size() const noexcept { return entries_.size() - dead_; }
  bool empty() const noexcept { return size() == 0; }

  // Every route, in insertion order.
  std::vector<route> routes() const {
    std::vector<route> out;
    out.reserve(size());
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].live) {
        out.push_back(entries_[i].value);
      }
    }
    return out;
  }

  // The best route for `path` (the target's path, without the query) and `method`.
  std::optional<route_match> find(std::string_view path, std::string_view method) const {
    if (nodes_.empty()) {
      return std::nullopt;
    }
    search_state state{path, method, detail::method_code(method)};
    state.mask = detail::method_bit(state.code) | detail::method_bit(detail::any_method);
    if (state.code == detail::head_method) {
      state.mask = static_cast<std::uint16_t>(state.mask | detail::method_bit(detail::get_method));
    }
    if (state.worth(nodes_[0])) {
      search(0, 0, state);
    }
    if (state.best == no_route) {
      return std::nullopt;
    }
    const route& winner = entries_[state.best].value;
    return route_match{&winner, extract_params(winner.pattern, path)};
  }

  // The methods of every route whose pattern matches `path`, sorted and unique, with
  // "HEAD" added when "GET" is present (for 405 + Allow); empty when no pattern matches.
  // An ANY route contributes "ANY" as is (such a path never answers 405).
  std::vector<std::string> allowed_methods(std::string_view path) const {
    std::vector<std::string_view> methods;
    if (!nodes_.empty()) {
      collect_methods(0, 0, path, methods);
    }
    if (std::find(methods.begin(), methods.end(), "GET") != methods.end()) {
      methods.push_back("HEAD");
    }
    std::sort(methods.begin(), methods.end());
    methods.erase(std::unique(methods.begin(), methods.end()), methods.end());
    return {methods.begin(), methods.end()};
  }

 private:
  struct entry {
    route value;
    std::string key;  // canonical pattern
    bool live;        // false once removed; the slot waits for the next rebuild
  };

  static constexpr std::uint32_t no_route = UINT32_MAX;

  struct search_state {
    std::string_view path;
    std::string_view method;
    std::uint8_t code;
    std::uint16_t mask = 0;  // method bits a route may have to serve this request
    std::uint32_t best = no_route;
    int best_priority = 0;
    int best_method_rank = 0;
    const detail::route_refs* best_list = nullptr;  // identifies the winner's shape

    // Whether a subtree can hold anything better than the best so far. Subtrees are
    // searched from most to least specific, so an equal priority found later loses.
    bool worth(const detail::route_node& node) const noexcept {
      return (node.method_mask & mask) != 0 &&
             (best == no_route || node.max_priority > best_priority);
    }
  };

  // The end or wildcard list of the node for canonical `pattern`, creating nodes as needed
  // and recording `priority` and `method` on the way down.
  detail::route_refs& node_list_for(std::string_view pattern, int priority, std::uint8_t method) {
    if (nodes_.empty()) {
      edges_.clear();
      new_node({}, priority);
    }
    // A node is written through nodes_.mutate() each time, never through a reference
    // kept across new_node(): that may clone the chunk the reference points into.
    std::uint32_t at = 0;
    const std::uint16_t bit = detail::method_bit(method);
    const auto record = [&] {
      detail::route_node& node = nodes_.mutate(at);
      node.max_priority = std::max(node.max_priority, priority);
      node.method_mask = static_cast<std::uint16_t>(node.method_mask | bit);
    };
    record();
    std::size_t pos = 0;
    for (std::string_view segment = detail::next_segment(pattern, pos); !segment.empty();
         segment = detail::next_segment(pattern, pos)) {
      if (detail::is_wildcard_segment(segment)) {
        detail::route_node& node = nodes_.mutate(at);
        node.has_wildcards = true;
        return node.wildcards;
      }
      std::uint32_t child = 0;
      if (detail::is_parameter_segment(segment)) {
        child = nodes_[at].parameter;
        if (child == 0) {
          child = new_node({}, priority);
          nodes_.mutate(at).parameter = child;
        }
        detail::route_node& node = nodes_.mutate(at);
        node.parameter_method_mask = static_cast<std::uint16_t>(node.parameter_method_mask | bit);
      } else {
        child = edges_.find(at, segment, nodes_);
        if (child == 0) {
          child = new_node(segment, priority);
          edges_.insert(at, child, nodes_);
          nodes_.mutate(at).has_static_children = true;
        }
      }
      at = child;
      record();
    }
    return nodes_.mutate(at).ends;
  }

  // Where the routes of canonical `pattern` are listed: a node, and whether in
  // its wildcard list or its end list. nullopt if no route had that shape.
  struct list_place {
    std::uint32_t node;
    bool wildcard;
  };
  std::optional<list_place> place_of(std::string_view pattern) const {
    if (nodes_.empty()) {
      return std::nullopt;
    }
    std::uint32_t at = 0;
    std::size_t pos = 0;
    for (std::string_view segment = detail::next_segment(pattern, pos); !segment.empty();
         segment = detail::next_segment(pattern, pos)) {
      if (detail::is_wildcard_segment(segment)) {
        return list_place{at, true};
      }
      at = detail::is_parameter_segment(segment) ? nodes_[at].parameter
                                                 : edges_.find(at, segment, nodes_);
      if (at == 0) {
        return std::nullopt;
      }
    }
    return list_place{at, false};
  }

  // The index of the route with this method and canonical pattern, if any.
  std::optional<std::uint32_t> index_of(std::string_view method, const std::string& key) const {
    const auto place = place_of(key);
    if (!place) {
      return std::nullopt;
    }
    const detail::route_node& node = nodes_[place->node];
    for (const detail::route_ref& ref : place->wildcard ? node.wildcards : node.ends) {
      const entry& e = entries_[ref.index];
      if (e.value.method == method && e.key == key) {
        return ref.index;
      }
    }
    return std::nullopt;
  }

  // Removes the route with this method and canonical pattern. Its slot and the
  // nodes it leaves empty stay until enough have piled up to rebuild.
  bool remove_canonical(std::string_view method, const std::string& key) {
    const auto place = place_of(key);
    if (!place) {
      return false;
    }
    detail::route_node& node = nodes_.mutate(place->node);
    detail::route_refs& list = place->wildcard ? node.wildcards : node.ends;
    for (const detail::route_ref& ref : list) {
      const entry& e = entries_[ref.index];
      if (e.value.method == method && e.key == key) {
        const std::uint32_t index = ref.index;
        list.erase(&ref);
        entries_.mutate(index).live = false;
        if (++dead_ > 64 && dead_ > entries_.size() / 2) {
          rebuild();
        }
        return true;
      }
    }
    return false;
  }

  std::uint32_t new_node(std::string_view segment, int priority) {
    const auto index = static_cast<std::uint32_t>(nodes_.size());
    detail::route_node node;
    node.segment = segment;
    node.max_priority = priority;
    nodes_.push_back(std::move(node));
    return index;
  }

  // Once removed routes make up half the slots: drop them and rebuild the trie from
  // the routes left, in their order, which also tightens the bounds. Amortized over
  // the removals, each costs O(1). Should an allocation fail here, the trie holds
  // only some routes but stays safe to read.
  void rebuild() {
    entry_table live;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].live) {
        live.push_back(entries_[i]);
      }
    }
    entries_ = std::move(live);
    dead_ = 0;
    nodes_.clear();
    edges_.clear();
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      const route& r = entries_[i].value;
      const std::uint8_t method = detail::method_code(r.method);
      node_list_for(entries_[i].key, r.priority, method)
          .push_back({static_cast<std::uint32_t>(i), r.priority, method});
    }
  }

  // Depth-first, most specific first: static child, parameter child, then (at the end of
  // the path) routes ending here, then wildcards. No allocation.
  void search(std::uint32_t at, std::size_t pos, search_state& state) const {
    const detail::route_node& node = nodes_[at];
    std::size_t next = pos;
    const std::string_view segment = detail::next_segment(state.path, next);
    if (segment.empty()) {
      consider(node.ends, state);
    } else {
      if (node.has_static_children) {
        const std::uint32_t child = edges_.find(at, segment, nodes_);
        if (child != 0 && state.worth(nodes_[child])) {
          search(child, next, state);
        }
      }
      if ((node.parameter_method_mask & state.mask) != 0 && state.worth(nodes_[node.parameter])) {
        search(node.parameter, next, state);
      }
    }
    if (node.has_wildcards) {
      consider(node.wildcards, state);
    }
  }

  // Where a route's method stands for this request: lower is better, -1 is no match.
  int method_rank(const detail::route_ref& ref, const search_state& state) const noexcept {
    if (ref.method == state.code) {
      return ref.method != detail::other_method || entries_[ref.index].value.method == state.method
                 ? 0
                 : -1;
    }
    if (state.code == detail::head_method && ref.method == detail::get_method) {
      return 1;
    }
    return ref.method == detail::any_method ? 2 : -1;
  }

  void consider(const detail::route_refs& list, search_state& state) const noexcept {
    for (const detail::route_ref& ref : list) {
      const int rank = method_rank(ref, state);
      if (rank < 0) {
        continue;
      }
      bool better = state.best == no_route || ref.priority > state.best_priority;
      if (!better && ref.priority == state.best_priority && &list == state.best_list) {
        better = rank < state.best_method_rank ||
                 (rank == state.best_method_rank && ref.index < state.best);
      }
      if (better) {
        state.best = ref.index;
        state.best_priority = ref.priority;
        state.best_method_rank = rank;
        state.best_list = &list;
      }
    }
  }

  void collect_methods(std::uint32_t at, std::size_t pos, std::string_view path,
                       std::vector<std::string_view>& methods) const {
    const detail::route_node& node = nodes_[at];
    const auto add_methods = [&](const detail::route_refs& list) {
      for (const detail::route_ref& ref : list) {
        methods.push_back(entries_[ref.index].value.method);
      }
    };
    std::size_t next = pos;
    const std::string_view segment = detail::next_segment(path, next);
    if (segment.empty()) {
      add_methods(node.ends);
    } else {
      if (const std::uint32_t child =
              node.has_static_children ? edges_.find(at, segment, nodes_) : 0;
          child != 0) {
        collect_methods(child, next, path, methods);
      }
      if (node.parameter != 0) {
        collect_methods(node.parameter, next, path, methods);
      }
    }
    add_methods(node.wildcards);
  }

  // Walks the winner's pattern along the path again and decodes what it captures.
  static path_params extract_params(std::string_view pattern, std::string_view path) {
    path_params params;
    std::size_t pattern_pos = 0;
    std::size_t path_pos = 0;
    for (std::string_view segment = detail::next_segment(pattern, pattern_pos); !segment.empty();
         segment = detail::next_segment(pattern, pattern_pos)) {
      if (detail::is_wildcard_segment(segment)) {
        std::string rest;
        bool first = true;
        for (std::string_view part = detail::next_segment(path, path_pos); !part.empty();
             part = detail::next_segment(path, path_pos)) {
          if (!first) {
            rest += '/';
          }
          first = false;
          detail::append_decoded(rest, part);
        }
        params.emplace_back(std::string(detail::capture_name(segment)), std::move(rest));
        break;
      }
      const std::string_view part = detail::next_segment(path, path_pos);
      if (detail::is_parameter_segment(segment)) {
        std::string value;
        detail::append_decoded(value, part);
        params.emplace_back(std::string(detail::capture_name(segment)), std::move(value));
      }
    }
    return params;
  }

  // Copy-on-write storage: a copy of the table (a routing snapshot, say) shares it,
  // and a change after the copy clones only the chunks it writes.
  using entry_table = detail::cow_vector<entry>;

  entry_table entries_;                           // insertion order; the trie refers to indices
  detail::cow_vector<detail::route_node> nodes_;  // nodes_[0] is the root; empty when no routes
  detail::edge_table edges_;                      // static edges
  std::size_t dead_ = 0;  // removed routes whose slots are still in entries_
};

}  // namespace fezz
