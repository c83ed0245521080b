// Fuzzes what etcd_store reads from the network: the watch stream's line splitter, fed the
// input in slices of pseudo-random sizes, and the response parsers on each line. Checks
// that slicing never changes the lines, that the splitter never holds more than its limit
// allows, and that base64 round-trips.

#include <fezz/etcd/gateway_messages.hpp>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::size_t max_line = 256;  // small, so inputs reach it

void require(bool condition) {
  if (!condition) {
    __builtin_trap();
  }
}

// The watch parser on every line, and one other parser chosen by `selector`.
void parse_line(std::string_view line, std::uint32_t selector) {
  namespace etcd = fezz::etcd;
  auto watch = etcd::parse_watch_response(line);
  if (!etcd::failed(watch)) {
    const auto& message = std::get<0>(watch);
    for (const auto& event : message.events) {
      require(event.type == etcd::watch_event::kind::put ||
              event.type == etcd::watch_event::kind::remove);
    }
    (void)message.is_progress();
  }
  switch (selector % 6) {
    case 0:
      (void)etcd::parse_range_response(line);
      break;
    case 1:
      (void)etcd::parse_txn_response(line);
      break;
    case 2:
      (void)etcd::parse_delete_response(line);
      break;
    case 3:
      (void)etcd::parse_lease_response(line);
      break;
    case 4:
      (void)etcd::parse_auth_response(line);
      break;
    default:
      (void)etcd::parse_empty_response(line);
      break;
  }

  const auto decoded = etcd::base64_decode(line);
  if (decoded) {
    require(etcd::base64_decode(etcd::base64_encode(*decoded)) == *decoded);
  }
  require(etcd::base64_decode(etcd::base64_encode(line)) == std::string(line));
  const auto end = etcd::prefix_range_end(line);
  require(!end.empty());
}

// Splits `data` fed in slices whose sizes come from `seed` (0: one slice).
std::vector<std::string> split(std::string_view data, std::uint32_t seed, bool& overflowed) {
  fezz::etcd::line_splitter splitter(max_line);
  std::vector<std::string> lines;
  std::minstd_rand random(seed);
  std::size_t at = 0;
  overflowed = false;
  while (at < data.size() && !overflowed) {
    const std::size_t size = seed == 0 ? data.size() : 1 + random() % 97;
    const auto slice = data.substr(at, size);
    at += slice.size();
    overflowed = !splitter.feed(slice);
    while (auto line = splitter.next()) {
      require(line->size() <= max_line);
      lines.emplace_back(*line);
    }
    overflowed = overflowed || splitter.overflowed();
    require(overflowed || splitter.pending() <= max_line);
  }
  if (!overflowed) {
    if (auto last = splitter.finish()) {
      lines.emplace_back(*last);
    }
    require(splitter.pending() == 0);
  }
  return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::uint32_t seed = data[0] + 1u;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  bool whole_overflowed = false;
  bool sliced_overflowed = false;
  const auto whole = split(input, 0, whole_overflowed);
  const auto sliced = split(input, seed, sliced_overflowed);
  require(whole_overflowed == sliced_overflowed);
  if (!whole_overflowed) {
    require(whole == sliced);
  }
  for (const auto& line : sliced) {
    parse_line(line, seed);
  }
  if (sliced.empty()) {
    parse_line(input, seed);  // a unary body has no newline
  }
  return 0;
}
