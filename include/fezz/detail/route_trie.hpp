#pragma once

// The parts of route_table's trie: method codes, the nodes, and the one hash
// table of static edges. A route_table owns them; nothing else reads them.

#include <fezz/detail/cow_vector.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fezz::detail {

// Methods get a small code so the search compares integers and prunes subtrees by a
// bit mask. Every other token shares `other_method` and is compared as text.
inline constexpr std::string_view coded_methods[] = {"GET",   "HEAD",    "POST",  "PUT", "DELETE",
                                                     "PATCH", "OPTIONS", "TRACE", "ANY"};
inline constexpr std::uint8_t get_method = 0;
inline constexpr std::uint8_t head_method = 1;
inline constexpr std::uint8_t any_method = 8;
inline constexpr std::uint8_t other_method = 9;

constexpr std::uint8_t method_code(std::string_view method) noexcept {
  for (std::uint8_t code = 0; code < other_method; ++code) {
    if (coded_methods[code] == method) {
      return code;
    }
  }
  return other_method;
}

constexpr std::uint16_t method_bit(std::uint8_t code) noexcept {
  return static_cast<std::uint16_t>(1U << code);
}

// A route as the search sees it, so that only the winner's entry is read.
struct route_ref {
  std::uint32_t index;  // into the table's entries, which are in insertion order
  int priority;
  std::uint8_t method;
};

// The routes of one shape at one node: almost always one, so the first is stored inline
// and a lookup reads no memory outside the node.
class route_refs {
 public:
  route_ref* begin() noexcept { return count_ > 1 ? spill_.data() : &first_; }
  route_ref* end() noexcept { return begin() + count_; }
  const route_ref* begin() const noexcept { return count_ > 1 ? spill_.data() : &first_; }
  const route_ref* end() const noexcept { return begin() + count_; }
  bool empty() const noexcept { return count_ == 0; }

  void push_back(const route_ref& ref) {
    if (count_ == 1) {
      spill_.reserve(2);
      spill_.push_back(first_);
    }
    if (count_ == 0) {
      first_ = ref;
    } else {
      spill_.push_back(ref);
    }
    ++count_;
  }

  // Removes the ref `at` points to, keeping the others in order.
  void erase(const route_ref* at) {
    if (count_ == 1) {
      count_ = 0;
      return;
    }
    spill_.erase(spill_.begin() + (at - spill_.data()));
    if (--count_ == 1) {
      first_ = spill_.front();
      spill_.clear();
      spill_.shrink_to_fit();
    }
  }

 private:
  route_ref first_{};
  std::uint32_t count_ = 0;
  std::vector<route_ref> spill_;  // all of them, once there is more than one
};

// One node per pattern prefix. Nodes live in a copy-on-write vector and refer to each
// other by index, so a copy of the whole trie shares them until it is written. The fields a
// lookup reads come first; a node fills two cache lines on common 64-bit targets.
struct alignas(64) route_node {
  std::uint32_t parameter = 0;              // child index; 0 means none (the root is never a child)
  int max_priority = 0;                     // an upper bound over the routes at or below this node
  std::uint16_t method_mask = 0;            // method bits of the routes at or below this node
  std::uint16_t parameter_method_mask = 0;  // the parameter child's, to prune it unread
  bool has_static_children = false;
  bool has_wildcards = false;
  std::string segment;   // the static segment leading here; "" for the root and parameters
  route_refs ends;       // routes whose pattern ends here
  route_refs wildcards;  // routes whose pattern is this prefix + "*..."
};

// A static edge (parent, segment) -> child in one open-addressing table for the whole
// trie: a lookup costs one probe and the child node it needs anyway, whatever the size.
struct edge_slot {
  std::uint32_t tag = 0;  // high hash bits, to skip most foreign slots without a node read
  std::uint32_t parent = 0;
  std::uint32_t child = 0;  // 0 means empty
};

inline std::uint64_t edge_hash(std::uint32_t parent, std::string_view segment) noexcept {
  std::uint64_t h = std::hash<std::string_view>{}(segment);
  h ^= (std::uint64_t{parent} + 1) * 0x9E3779B97F4A7C15ULL;
  h ^= h >> 32;
  h *= 0xD6E8FEB86659FD93ULL;
  h ^= h >> 32;
  return h;
}

// The static edges of a trie whose nodes (a random-access container of route_node)
// are passed in: nodes[child].segment is the key an edge is found by. Open addressing,
// at most half full, its size a power of two; copy-on-write like the nodes.
class edge_table {
 public:
  // The child of `parent` by static `segment`, or 0 if there is none.
  template <class Nodes>
  std::uint32_t find(std::uint32_t parent, std::string_view segment,
                     const Nodes& nodes) const noexcept {
    if (slots_.empty()) {
      return 0;
    }
    const std::uint64_t hash = edge_hash(parent, segment);
    const auto tag = static_cast<std::uint32_t>(hash >> 32);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = static_cast<std::size_t>(hash) & mask;; i = (i + 1) & mask) {
      const edge_slot slot = slots_[i];
      if (slot.child == 0) {
        return 0;
      }
      if (slot.tag == tag && slot.parent == parent && nodes[slot.child].segment == segment) {
        return slot.child;
      }
    }
  }

  // Adds the edge from `parent` to its static `child`, which is not in the table yet.
  template <class Nodes>
  void insert(std::uint32_t parent, std::uint32_t child, const Nodes& nodes) {
    if ((count_ + 1) * 2 > slots_.size()) {
      auto old = std::exchange(
          slots_, cow_vector<edge_slot>::of_size(std::max<std::size_t>(16, slots_.size() * 2)));
      count_ = 0;
      for (std::size_t i = 0; i < old.size(); ++i) {
        if (old[i].child != 0) {
          place(old[i].parent, old[i].child, nodes[old[i].child].segment);
        }
      }
    }
    place(parent, child, nodes[child].segment);
  }

  void clear() noexcept {
    slots_.clear();
    count_ = 0;
  }

 private:
  void place(std::uint32_t parent, std::uint32_t child, std::string_view segment) {
    const std::uint64_t hash = edge_hash(parent, segment);
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = static_cast<std::size_t>(hash) & mask;
    while (slots_[i].child != 0) {
      i = (i + 1) & mask;
    }
    slots_.mutate(i) = {static_cast<std::uint32_t>(hash >> 32), parent, child};
    ++count_;
  }

  cow_vector<edge_slot> slots_;
  std::size_t count_ = 0;
};

}  // namespace fezz::detail
