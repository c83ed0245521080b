#pragma once

// The control plane's format in a key-value store such as etcd, shared by etcd_store,
// fezzctl and any other client:
//
//   <prefix>functions/<id>  {"id","version","method","path","timeout","description",
//                            "max_concurrency","nodes":[...],"env":{...},
//                            "module":{"sha256","path"},
//                            "versions":[{"version","weight","module":{"sha256","path"}}]}
//                           (timeout in whole seconds; max_concurrency 0: no limit;
//                           module and versions absent: the code compiled into the binary;
//                           versions: 1 to 16 live versions, each weight 0 to 1000000)
//   <prefix>nodes/<name>    {"address","state","started","fezz_version"}
//   <prefix>code/<sha256>   {"size","chunks"}: a module's bytes are in <prefix>code/<sha256>/<n>,
//                           n from 0 to chunks - 1, each at most 512 KiB (written first)
//
// Parsing ignores fields it does not know and fills absent ones with fezz::manifest's
// defaults, so a later field joins the object without breaking older readers. Each problem is
// reported as one line naming the field.

#include <fezz/function_store.hpp>
#include <fezz/manifest.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace fezz {

inline constexpr std::string_view default_store_prefix = "/fezz/";

inline std::string functions_prefix(std::string_view prefix) {
  return std::string(prefix) + "functions/";
}
inline std::string nodes_prefix(std::string_view prefix) {
  return std::string(prefix) + "nodes/";
}
inline std::string function_key(std::string_view prefix, std::string_view id) {
  return functions_prefix(prefix) + std::string(id);
}
inline std::string node_key(std::string_view prefix, std::string_view name) {
  return nodes_prefix(prefix) + std::string(name);
}
// Module code sorts before functions/ and nodes/, so a node's watch of those (from
// functions/ to the prefix's end) never carries a module's bytes.
inline std::string module_key(std::string_view prefix, std::string_view sha256) {
  return std::string(prefix) + "code/" + std::string(sha256);
}
inline std::string module_chunk_key(std::string_view prefix, std::string_view sha256,
                                    std::size_t chunk) {
  return module_key(prefix, sha256) + "/" + std::to_string(chunk);
}

// The longest timeout an entry may name: one year keeps deadline arithmetic far from
// overflow.
inline constexpr std::int64_t max_timeout_seconds = 365 * 24 * 3600;

// A parsed value, or the one-line reason it could not be parsed.
template <class T>
class parse_result {
 public:
  parse_result(T value) : state_(std::move(value)) {}  // NOLINT: implicit on purpose
  static parse_result failure(std::string reason) {
    return parse_result(problem{std::move(reason)});
  }

  bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() { return std::get<0>(state_); }
  const T& value() const { return std::get<0>(state_); }
  // Empty when ok().
  const std::string& error() const {
    static const std::string none;
    return ok() ? none : std::get<1>(state_).reason;
  }

 private:
  struct problem {
    std::string reason;
  };
  explicit parse_result(problem p) : state_(std::move(p)) {}
  std::variant<T, problem> state_;
};

namespace detail::store_format {

using json = nlohmann::json;

// Text from the store, quoted in a reason: control characters escaped and long text cut,
// so the reason stays one short line.
inline std::string printable(std::string_view text) {
  constexpr std::size_t max_length = 80;
  std::size_t length = std::min(text.size(), max_length);
  while (length > 0 && length < text.size() && (text[length] & 0xc0) == 0x80) {
    --length;  // never cut a UTF-8 sequence in two
  }
  std::string out;
  for (std::size_t i = 0; i < length; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (length < text.size()) {
    out += "...";
  }
  return out;
}

// Each reader returns an empty string, having set `out` if the field is present, or why
// the field is wrong.
inline std::string read_string(const json& object, const char* field, std::string& out) {
  const auto it = object.find(field);
  if (it == object.end() || it->is_null()) {
    return {};
  }
  if (!it->is_string()) {
    return std::string("field '") + field + "' must be a string";
  }
  out = it->get<std::string>();
  return {};
}

inline std::string read_timeout(const json& object, std::chrono::seconds& out) {
  const auto it = object.find("timeout");
  if (it == object.end() || it->is_null()) {
    return {};
  }
  if (it->is_number_unsigned()) {
    const auto seconds = it->get<std::uint64_t>();
    if (seconds > static_cast<std::uint64_t>(max_timeout_seconds)) {
      return "field 'timeout' must be at most " + std::to_string(max_timeout_seconds) + " seconds";
    }
    out = std::chrono::seconds(static_cast<std::int64_t>(seconds));
    return {};
  }
  if (it->is_number_integer()) {  // negative: manifest_problem says why it is wrong
    out = std::chrono::seconds(it->get<std::int64_t>());
    return {};
  }
  return "field 'timeout' must be a whole number of seconds";
}

inline std::string read_max_concurrency(const json& object, std::uint32_t& out) {
  const auto it = object.find("max_concurrency");
  if (it == object.end() || it->is_null()) {
    return {};
  }
  if (!it->is_number_unsigned() || it->get<std::uint64_t>() > UINT32_MAX) {
    return "field 'max_concurrency' must be a whole number from 0 (no limit) to 4294967295";
  }
  out = static_cast<std::uint32_t>(it->get<std::uint64_t>());
  return {};
}

inline std::string read_nodes(const json& object, std::vector<std::string>& out) {
  const auto it = object.find("nodes");
  if (it == object.end() || it->is_null()) {
    return {};
  }
  if (!it->is_array()) {
    return "field 'nodes' must be an array of node names";
  }
  out.clear();
  for (const auto& node : *it) {
    if (!node.is_string()) {
      return "field 'nodes' must be an array of node names";
    }
    auto name = node.get<std::string>();
    if (std::find(out.begin(), out.end(), name) == out.end()) {  // as on_node does
      out.push_back(std::move(name));
    }
  }
  return {};
}

inline std::string read_env(const json& object, env_map& out) {
  const auto it = object.find("env");
  if (it == object.end() || it->is_null()) {
    return {};
  }
  if (!it->is_object()) {
    return "field 'env' must be an object of strings";
  }
  out.clear();
  for (const auto& [key, value] : it->items()) {
    if (!value.is_string()) {
      return "field 'env' must be an object of strings ('" + printable(key) + "' is not)";
    }
    out.emplace(key, value.get<std::string>());
  }
  return {};
}

// A module_source from `value` ({"sha256", "path"}); false if it is not one.
inline bool read_module_source(const json& value, module_source& out) {
  return value.is_object() && read_string(value, "sha256", out.sha256).empty() &&
         read_string(value, "path", out.path).empty() && out.sha256.size() == 64 &&
         std::all_of(out.sha256.begin(), out.sha256.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

inline std::string read_module(const json& object, std::optional<module_source>& out) {
  const auto it = object.find("module");
  if (it == object.end() || it->is_null()) {
    return {};
  }
  module_source source;
  if (!read_module_source(*it, source)) {
    return "field 'module' must be {\"sha256\": 64 lowercase hex digits, \"path\": a file or "
           "absent}";
  }
  out = std::move(source);
  return {};
}

inline constexpr std::size_t max_versions = 16;
inline constexpr std::uint32_t max_version_weight = 1000000;

inline std::string read_versions(const json& object, std::vector<function_version>& out) {
  const auto it = object.find("versions");
  if (it == object.end() || it->is_null()) {
    return {};
  }
  const auto shape = [] {  // written only when it is the answer
    return "field 'versions' must be an array of 1 to " + std::to_string(max_versions) +
           " {\"version\": a name, \"weight\": 0 to " + std::to_string(max_version_weight) +
           ", \"module\": {\"sha256\", \"path\"}}";
  };
  if (!it->is_array() || it->empty() || it->size() > max_versions) {
    return shape();
  }
  out.clear();
  for (const auto& item : *it) {
    function_version v;
    if (!item.is_object() || !read_string(item, "version", v.name).empty() ||
        !item.contains("module") || !read_module_source(item["module"], v.module)) {
      return shape();
    }
    if (!is_valid_version_name(v.name)) {
      return "field 'versions': version \"" + printable(v.name) +
             "\" must be 1 to 64 of A-Z a-z 0-9 . _ -";
    }
    const auto weight = item.find("weight");
    if (weight != item.end() && !weight->is_null()) {
      if (!weight->is_number_unsigned() || weight->get<std::uint64_t>() > max_version_weight) {
        return "field 'versions': the weight of \"" + v.name +
               "\" must be a whole number from 0 to " + std::to_string(max_version_weight);
      }
      v.weight = static_cast<std::uint32_t>(weight->get<std::uint64_t>());
    }
    if (std::any_of(out.begin(), out.end(),
                    [&](const function_version& other) { return other.name == v.name; })) {
      return "field 'versions': version \"" + v.name + "\" is listed twice";
    }
    out.push_back(std::move(v));
  }
  if (object.contains("module") && !object["module"].is_null()) {
    return "fields 'module' and 'versions' exclude each other: one module, or several versions";
  }
  return {};
}

inline json module_json(const module_source& source) {
  json j = {{"sha256", source.sha256}};
  if (!source.path.empty()) {
    j["path"] = source.path;
  }
  return j;
}

// Parses `text` as a JSON object, or says why it is not one.
inline std::string parse_object(std::string_view text, json& out) {
  try {
    out = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    return "not JSON (syntax error at byte " + std::to_string(e.byte) + ")";
  } catch (const json::exception&) {  // out_of_range: a number beyond a double's range
    return "not JSON (a number out of range)";
  }
  if (!out.is_object()) {
    return "not a JSON object";
  }
  return {};
}

inline std::string dump(const json& value, std::string_view what) {
  try {
    return value.dump();
  } catch (const json::type_error&) {
    throw store_error(std::string(what) + ": every text must be valid UTF-8");
  }
}

}  // namespace detail::store_format

// The entry as stored: every field written, so a reader sees the defaults it got.
// Throws store_error if a text is not valid UTF-8.
inline std::string to_json(const function_entry& entry) {
  const auto& m = entry.manifest;
  nlohmann::json j = {{"id", m.id},
                      {"version", m.version},
                      {"method", m.method},
                      {"path", m.path},
                      {"timeout", m.timeout.count()},
                      {"description", m.description},
                      {"max_concurrency", m.max_concurrency},
                      {"nodes", entry.nodes},
                      {"env", entry.env}};
  if (entry.module) {
    j["module"] = detail::store_format::module_json(*entry.module);
  }
  if (!entry.versions.empty()) {
    auto& versions = j["versions"] = nlohmann::json::array();
    for (const auto& v : entry.versions) {
      versions.push_back({{"version", v.name},
                          {"weight", v.weight},
                          {"module", detail::store_format::module_json(v.module)}});
    }
  }
  return detail::store_format::dump(j, "function '" + m.id + "'");
}

// Parses an entry. `key_id` is the id its key names: if not empty, the entry's "id" must
// equal it, and may be absent. The manifest must pass manifest_problem.
inline parse_result<function_entry> parse_function_entry(std::string_view text,
                                                         std::string_view key_id = {}) {
  namespace sf = detail::store_format;
  using result = parse_result<function_entry>;
  sf::json object;
  if (auto problem = sf::parse_object(text, object); !problem.empty()) {
    return result::failure(std::move(problem));
  }
  function_entry entry;
  auto& m = entry.manifest;
  m.id = std::string(key_id);
  for (auto problem :
       {sf::read_string(object, "id", m.id), sf::read_string(object, "version", m.version),
        sf::read_string(object, "method", m.method), sf::read_string(object, "path", m.path),
        sf::read_timeout(object, m.timeout), sf::read_string(object, "description", m.description),
        sf::read_max_concurrency(object, m.max_concurrency), sf::read_nodes(object, entry.nodes),
        sf::read_env(object, entry.env), sf::read_module(object, entry.module),
        sf::read_versions(object, entry.versions)}) {
    if (!problem.empty()) {
      return result::failure(std::move(problem));
    }
  }
  if (!key_id.empty() && m.id != key_id) {
    return result::failure("field 'id' is '" + sf::printable(m.id) + "' but the key names '" +
                           sf::printable(key_id) + "'");
  }
  if (const auto problem = manifest_problem(m); !problem.empty()) {
    return result::failure("invalid manifest: " + std::string(problem));
  }
  return entry;
}

// What <prefix>code/<sha256> says of a module's bytes kept in the store.
struct module_record {
  std::uint64_t size = 0;    // bytes in all
  std::uint64_t chunks = 0;  // <prefix>code/<sha256>/0 to chunks - 1
  friend bool operator==(const module_record&, const module_record&) = default;
};

inline constexpr std::size_t module_chunk_bytes = 512 * 1024;  // under etcd's 1.5 MiB request

inline constexpr std::uint64_t module_chunks_for(std::uint64_t size) noexcept {
  return size / module_chunk_bytes + (size % module_chunk_bytes != 0 ? 1 : 0);
}

inline std::string to_json(const module_record& record) {
  return nlohmann::json{{"size", record.size}, {"chunks", record.chunks}}.dump();
}

// The chunks must be as many as `size` needs: a record can not make a reader fetch more.
inline parse_result<module_record> parse_module_record(std::string_view text) {
  namespace sf = detail::store_format;
  using result = parse_result<module_record>;
  sf::json object;
  if (auto problem = sf::parse_object(text, object); !problem.empty()) {
    return result::failure(std::move(problem));
  }
  const auto size = object.find("size");
  const auto chunks = object.find("chunks");
  if (size == object.end() || chunks == object.end() || !size->is_number_unsigned() ||
      !chunks->is_number_unsigned()) {
    return result::failure("a module record must be {\"size\": bytes, \"chunks\": a count}");
  }
  module_record record{size->get<std::uint64_t>(), chunks->get<std::uint64_t>()};
  if (const auto needed = module_chunks_for(record.size); record.chunks != needed) {
    return result::failure("a module record of " + std::to_string(record.size) +
                           " bytes must have " + std::to_string(needed) + " chunks");
  }
  return record;
}

inline bool is_valid_node_state(std::string_view state) noexcept {
  return state == "serving" || state == "draining";
}

// The node record as stored; its name is in the key, not in the value.
inline std::string to_json(const node_record& node) {
  nlohmann::json j = {{"address", node.address},
                      {"state", node.state},
                      {"started", node.started},
                      {"fezz_version", node.fezz_version}};
  return detail::store_format::dump(j, "node '" + node.name + "'");
}

// Parses a node record whose key names `name`. An absent state means "serving".
inline parse_result<node_record> parse_node_record(std::string_view text, std::string_view name) {
  namespace sf = detail::store_format;
  using result = parse_result<node_record>;
  sf::json object;
  if (auto problem = sf::parse_object(text, object); !problem.empty()) {
    return result::failure(std::move(problem));
  }
  node_record node;
  node.name = std::string(name);
  for (auto problem : {sf::read_string(object, "address", node.address),
                       sf::read_string(object, "state", node.state),
                       sf::read_string(object, "started", node.started),
                       sf::read_string(object, "fezz_version", node.fezz_version)}) {
    if (!problem.empty()) {
      return result::failure(std::move(problem));
    }
  }
  if (!is_valid_node_state(node.state)) {
    return result::failure("field 'state' must be \"serving\" or \"draining\"");
  }
  return node;
}

}  // namespace fezz
