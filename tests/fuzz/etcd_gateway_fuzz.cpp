// Fuzzes what etcd_store reads from the network: the watch stream's line splitter, fed the
// input whole and in slices of pseudo-random sizes, and every response reader on each
// line. Checks that slicing never changes the lines, that the splitter never holds more
// than its limit allows, and that base64 round-trips.

#include <fezz/detail/base64.hpp>
#include <fezz/etcd/gateway_requests.hpp>
#include <fezz/etcd/gateway_responses.hpp>
#include <fezz/etcd/line_splitter.hpp>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace etcd = fezz::etcd;

constexpr std::size_t max_line = 256;  // small, so inputs reach it

void require(bool condition) {
  if (!condition) {
    __builtin_trap();
  }
}

// One JSON parse, then every reader on the object.
void parse_line(std::string_view line) {
  auto parsed = etcd::detail::parse_body(line);
  if (!etcd::failed(parsed)) {
    const auto& object = std::get<0>(parsed);
    etcd::watch_response watch;
    if (etcd::detail::read_watch_response(object, watch)) {
      for (const auto& event : watch.events) {
        require(event.type == etcd::watch_event::kind::put ||
                event.type == etcd::watch_event::kind::remove);
      }
      (void)watch.is_progress();
    }
    etcd::range_response range;
    (void)etcd::detail::read_range_response(object, range);
    etcd::txn_response txn;
    (void)etcd::detail::read_txn_response(object, txn);
    etcd::delete_response deleted;
    (void)etcd::detail::read_delete_response(object, deleted);
    etcd::lease_response lease;
    (void)etcd::detail::read_lease_response(object, lease);
    etcd::auth_response auth;
    (void)etcd::detail::read_auth_response(object, auth);
    etcd::empty_response empty;
    (void)etcd::detail::read_empty_response(object, empty);
  } else {
    require(!std::get<1>(parsed).message.empty());
  }

  if (const auto decoded = fezz::detail::base64_decode(line)) {
    require(fezz::detail::base64_decode(fezz::detail::base64_encode(*decoded)) == *decoded);
  }
  require(!etcd::prefix_range_end(line).empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::uint32_t seed = data[0] + 1u;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  // Whole: one feed, so the views stay valid.
  etcd::line_splitter whole(max_line);
  const bool whole_fits = whole.feed(input);
  std::vector<std::string_view> lines;
  while (auto line = whole.next()) {
    lines.push_back(*line);
  }
  const bool whole_ok = whole_fits && !whole.overflowed();
  if (whole_ok) {
    if (auto last = whole.finish()) {
      lines.push_back(*last);
    }
  }

  // Sliced: the same lines, in order, whatever the slices.
  etcd::line_splitter sliced(max_line);
  std::minstd_rand random(seed);
  std::size_t at = 0;
  std::size_t index = 0;
  bool sliced_ok = true;
  while (at < input.size() && sliced_ok) {
    const auto slice = input.substr(at, 1 + random() % 97);
    at += slice.size();
    sliced_ok = sliced.feed(slice);
    while (auto line = sliced.next()) {
      require(line->size() <= max_line);
      require(index < lines.size() && *line == lines[index]);
      ++index;
      parse_line(*line);
    }
    sliced_ok = sliced_ok && !sliced.overflowed();
    require(!sliced_ok || sliced.pending() <= max_line);
  }
  require(sliced_ok == whole_ok);
  if (sliced_ok) {
    if (auto last = sliced.finish()) {
      require(index < lines.size() && *last == lines[index]);
      ++index;
      parse_line(*last);
    }
    require(index == lines.size());
    require(sliced.pending() == 0);
  }
  if (lines.empty()) {
    parse_line(input);  // a unary body has no newline
  }
  return 0;
}
