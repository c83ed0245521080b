#pragma once

// The NDJSON framing of a watch's streamed body. etcd's gateway sends
// {"result":{...}} messages one a line, and their boundaries do not follow the HTTP chunks
// (a large event arrives as one chunk and its "\n" as the next).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace fezz::etcd {

// line_splitter: cuts a stream's body, in whatever slices it arrives, into its "\n"-ended
// messages. A message longer than `max_line` is an error, so a peer that never sends a
// newline cannot make the client buffer without bound.

class line_splitter {
 public:
  static constexpr std::size_t default_max_line = 4 * 1024 * 1024;

  explicit line_splitter(std::size_t max_line = default_max_line) : max_line_(max_line) {}

  // Appends a slice. Returns false, and keeps failing, once a message exceeds the limit.
  // Invalidates the views next() returned.
  bool feed(std::string_view data) {
    if (overflowed_) {
      return false;
    }
    if (read_ > 0 && read_ >= buffer_.size() / 2) {  // reclaim what next() consumed
      buffer_.erase(0, read_);
      scanned_ -= read_;
      read_ = 0;
    }
    buffer_.append(data);
    check_limit();
    return !overflowed_;
  }

  // The next whole message, without its "\n" (or "\r\n"); empty lines are skipped. The
  // view stays valid until the next feed().
  std::optional<std::string_view> next() {
    while (!overflowed_) {
      const auto newline = buffer_.find('\n', scanned_);
      if (newline == std::string::npos) {
        scanned_ = buffer_.size();
        check_limit();
        return std::nullopt;
      }
      std::string_view line(buffer_.data() + read_, newline - read_);
      read_ = scanned_ = newline + 1;
      if (line.size() > max_line_) {
        overflowed_ = true;
        return std::nullopt;
      }
      if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
      }
      if (!line.empty()) {
        return line;
      }
    }
    return std::nullopt;
  }

  // At the end of the body: what is left, as a last message without its newline (etcd
  // ends a stream with an in-band error that has none), or nullopt if nothing is. Call it
  // once next() returns nullopt.
  std::optional<std::string_view> finish() {
    if (overflowed_ || pending() == 0) {
      return std::nullopt;
    }
    std::string_view rest(buffer_.data() + read_, buffer_.size() - read_);
    read_ = scanned_ = buffer_.size();
    if (!rest.empty() && rest.back() == '\r') {
      rest.remove_suffix(1);
    }
    return rest.empty() ? std::nullopt : std::optional(rest);
  }

  bool overflowed() const noexcept { return overflowed_; }
  // Bytes of an unfinished message held.
  std::size_t pending() const noexcept { return buffer_.size() - read_; }
  std::size_t max_line() const noexcept { return max_line_; }

 private:
  // The first message not yet returned is the only one that can be over the limit here
  // (later ones are checked by next()); scanning resumes where it stopped, so a message
  // fed in many slices costs linear time.
  void check_limit() {
    const auto newline = buffer_.find('\n', scanned_);
    if (newline == std::string::npos) {
      scanned_ = buffer_.size();
    }
    const auto end = newline == std::string::npos ? buffer_.size() : newline;
    if (end - read_ > max_line_) {
      overflowed_ = true;
    }
  }

  std::size_t max_line_;
  std::string buffer_;
  std::size_t read_ = 0;     // start of the first message not yet returned
  std::size_t scanned_ = 0;  // no "\n" in [read_, scanned_)
  bool overflowed_ = false;
};

}  // namespace fezz::etcd
