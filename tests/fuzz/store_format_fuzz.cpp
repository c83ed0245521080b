// Fuzzes what etcd_store reads from the store: function entries, node records and module
// records. Checks that a parsed value writes back to JSON that parses to the same value.

#include <fezz/store_format.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

void require(bool condition) {
  if (!condition) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  // The first byte chooses the key the value is read under.
  const char mode = static_cast<char>(data[0]);
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string_view key = (mode & 1) ? std::string_view("hello") : std::string_view();

  const auto entry = fezz::parse_function_entry(text, key);
  if (entry) {
    require(fezz::manifest_problem(entry.value().manifest).empty());
    require(key.empty() || entry.value().id() == key);
    const auto again = fezz::parse_function_entry(fezz::to_json(entry.value()), key);
    require(again.ok() && again.value() == entry.value());
  } else {
    require(!entry.error().empty());
    require(entry.error().find('\n') == std::string::npos);  // one line, whatever the input
  }

  const auto node = fezz::parse_node_record(text, "node-1");
  if (node) {
    require(fezz::is_valid_node_state(node.value().state));
    const auto again = fezz::parse_node_record(fezz::to_json(node.value()), "node-1");
    require(again.ok() && again.value() == node.value());
  } else {
    require(!node.error().empty());
    require(node.error().find('\n') == std::string::npos);
  }

  const auto record = fezz::parse_module_record(text);
  if (record) {
    require(record.value().chunks == fezz::module_chunks_for(record.value().size));
    require(fezz::parse_module_record(fezz::to_json(record.value())).value() == record.value());
  } else {
    require(!record.error().empty());
  }
  return 0;
}
