#pragma once

// A vector whose copies share storage until one of them writes: elements live
// in fixed-size chunks with a reference count, a copy copies only the chunk
// pointers, and writing to an element first clones its chunk if another copy
// still holds it. So a copy of N elements costs N / chunk_size pointer copies,
// and a write after a copy costs one chunk. Reads cost one more indirection
// than a plain vector.
//
// Like the standard containers it is not synchronized: each copy belongs to
// one writer at a time, and a copy that nobody writes may be read by many
// threads, which may drop their copies at any time.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <utility>
#include <vector>

namespace fezz::detail {

template <class T, std::size_t ChunkSize = 256>
class cow_vector {
  static_assert((ChunkSize & (ChunkSize - 1)) == 0, "chunk size must be a power of two");

 public:
  using value_type = T;

  cow_vector() = default;
  cow_vector(const cow_vector& other) : chunks_(other.chunks_), size_(other.size_) {
    for (chunk* c : chunks_) {
      c->holders.fetch_add(1, std::memory_order_relaxed);
    }
  }
  cow_vector(cow_vector&& other) noexcept
      : chunks_(std::move(other.chunks_)), size_(std::exchange(other.size_, 0)) {
    other.chunks_.clear();
  }
  cow_vector& operator=(cow_vector other) noexcept {
    std::swap(chunks_, other.chunks_);
    std::swap(size_, other.size_);
    return *this;
  }
  ~cow_vector() { clear(); }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  const T& operator[](std::size_t i) const noexcept {
    return chunks_[i / ChunkSize]->items[i % ChunkSize];
  }

  // The element to write; clones its chunk first if another copy holds it.
  T& mutate(std::size_t i) { return own(i / ChunkSize)[i % ChunkSize]; }

  void push_back(T value) {
    if (size_ % ChunkSize == 0) {
      chunks_.reserve(chunks_.size() + 1);
      chunks_.push_back(new chunk);
      chunks_.back()->items.reserve(ChunkSize);
    }
    own(chunks_.size() - 1).push_back(std::move(value));
    ++size_;
  }

  void clear() noexcept {
    for (chunk* c : chunks_) {
      release(c);
    }
    chunks_.clear();
    size_ = 0;
  }

  // `count` default-constructed elements.
  static cow_vector of_size(std::size_t count) {
    cow_vector v;
    while (v.size_ < count) {
      v.chunks_.reserve(v.chunks_.size() + 1);
      v.chunks_.push_back(new chunk);
      const std::size_t n = std::min(ChunkSize, count - v.size_);
      v.chunks_.back()->items.resize(n);
      v.size_ += n;
    }
    return v;
  }

 private:
  struct chunk {
    std::atomic<std::size_t> holders{1};
    std::vector<T> items;
  };

  static void release(chunk* c) noexcept {
    if (c->holders.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      delete c;
    }
  }

  // The items of chunk `c`, held by this copy alone. The acquire pairs with
  // the release of another copy's last drop, so its reads end before we write.
  std::vector<T>& own(std::size_t c) {
    chunk*& held = chunks_[c];
    if (held->holders.load(std::memory_order_acquire) != 1) {
      auto* copy = new chunk;
      try {
        copy->items.reserve(ChunkSize);  // a chunk never reallocates: references stay valid
        copy->items.assign(held->items.begin(), held->items.end());
      } catch (...) {
        delete copy;
        throw;
      }
      release(std::exchange(held, copy));
    }
    return held->items;
  }

  std::vector<chunk*> chunks_;
  std::size_t size_ = 0;
};

}  // namespace fezz::detail
