#pragma once

// A hash map from string to V whose copies share storage until one of them
// writes (see cow_vector): a copy of N entries costs N / 256 pointer copies,
// and an insert or erase after a copy clones the chunks it writes. Open
// addressing with linear probing; erased slots become tombstones until the
// next growth rehashes them away.

#include <fezz/detail/cow_vector.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace fezz::detail {

template <class V>
class cow_map {
 public:
  std::size_t size() const noexcept { return size_; }

  const V* find(std::string_view key) const noexcept {
    if (slots_.empty()) {
      return nullptr;
    }
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = hash(key) & mask;; i = (i + 1) & mask) {
      const slot& s = slots_[i];
      if (s.state == empty) {
        return nullptr;
      }
      if (s.state == full && s.key == key) {
        return &s.value;
      }
    }
  }

  void insert_or_assign(std::string_view key, V value) {
    if (slots_.empty() || (used_ + 1) * 2 > slots_.size()) {
      grow();
    }
    const std::size_t mask = slots_.size() - 1;
    std::size_t reuse = slots_.size();  // the first tombstone on the way, if any
    for (std::size_t i = hash(key) & mask;; i = (i + 1) & mask) {
      const slot& s = slots_[i];
      if (s.state == full && s.key == key) {
        slots_.mutate(i).value = std::move(value);
        return;
      }
      if (s.state == erased && reuse == slots_.size()) {
        reuse = i;
      }
      if (s.state == empty) {
        if (reuse == slots_.size()) {
          reuse = i;
          ++used_;
        }
        break;
      }
    }
    slot& target = slots_.mutate(reuse);
    target.key = key;
    target.value = std::move(value);
    target.state = full;
    ++size_;
  }

  // False if there was no such key.
  bool erase(std::string_view key) {
    if (slots_.empty()) {
      return false;
    }
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = hash(key) & mask;; i = (i + 1) & mask) {
      const slot& s = slots_[i];
      if (s.state == empty) {
        return false;
      }
      if (s.state == full && s.key == key) {
        slot& doomed = slots_.mutate(i);
        doomed.state = erased;
        doomed.key.clear();
        doomed.value = V{};
        --size_;
        return true;
      }
    }
  }

 private:
  enum state_type : std::uint8_t { empty, full, erased };
  struct slot {
    std::string key;
    V value{};
    state_type state = empty;
  };

  static std::size_t hash(std::string_view key) noexcept {
    return std::hash<std::string_view>{}(key);
  }

  // Doubles the table (or keeps its size, when tombstones are what fills it),
  // dropping the tombstones.
  void grow() {
    const std::size_t capacity = size_ * 4 > slots_.size() ? slots_.size() * 2 : slots_.size();
    auto old =
        std::exchange(slots_, cow_vector<slot>::of_size(std::max<std::size_t>(16, capacity)));
    size_ = 0;
    used_ = 0;
    for (std::size_t i = 0; i < old.size(); ++i) {
      if (old[i].state == full) {
        insert_or_assign(old[i].key, old[i].value);
      }
    }
  }

  cow_vector<slot> slots_;  // size is 0 or a power of two
  std::size_t size_ = 0;    // full slots
  std::size_t used_ = 0;    // full and erased slots: what probing walks over
};

}  // namespace fezz::detail
