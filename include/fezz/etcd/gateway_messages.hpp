#pragma once

// The messages of etcd v3's HTTP/JSON gateway (etcd 3.4's grpc-gateway under /v3/), with no
// I/O: request bodies, response parsing and the splitter that cuts a watch's chunked body
// into messages. The gateway's quirks, as measured on etcd 3.4.23:
//   - keys and values are base64; int64 values come back as JSON strings;
//   - fields at their zero value are omitted: a PUT event has no "type", a failed txn has
//     no "succeeded", a missing key has no "kvs";
//   - a unary error is {"error","message","code"}; an error inside a stream is
//     {"error":{"grpc_code","http_code","message","http_status"}};
//   - stream messages are {"result":{...}} lines whose boundaries do not follow the HTTP
//     chunks (a large event arrives as one chunk and its "\n" as the next).

#include <nlohmann/json.hpp>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace fezz::etcd {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------
// Base64 (RFC 4648, standard alphabet), as the gateway uses for every bytes field.

inline std::string base64_encode(std::string_view data) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const auto n = (std::uint32_t(std::uint8_t(data[i])) << 16) |
                   (std::uint32_t(std::uint8_t(data[i + 1])) << 8) | std::uint8_t(data[i + 2]);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  if (const auto rest = data.size() - i; rest > 0) {
    auto n = std::uint32_t(std::uint8_t(data[i])) << 16;
    if (rest == 2) {
      n |= std::uint32_t(std::uint8_t(data[i + 1])) << 8;
    }
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += rest == 2 ? alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// nullopt if `text` is not base64. Padding may be omitted.
inline std::optional<std::string> base64_decode(std::string_view text) {
  auto value_of = [](char c) -> int {
    if (c >= 'A' && c <= 'Z')
      return c - 'A';
    if (c >= 'a' && c <= 'z')
      return c - 'a' + 26;
    if (c >= '0' && c <= '9')
      return c - '0' + 52;
    if (c == '+')
      return 62;
    if (c == '/')
      return 63;
    return -1;
  };
  if (text.size() % 4 == 0 && !text.empty() && text.back() == '=') {
    text.remove_suffix(text.size() >= 2 && text[text.size() - 2] == '=' ? 2 : 1);
  }
  if (text.size() % 4 == 1) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  std::uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    const int v = value_of(c);
    if (v < 0) {
      return std::nullopt;
    }
    bits = (bits << 6) | std::uint32_t(v);
    if (++count == 4) {
      out += char((bits >> 16) & 0xff);
      out += char((bits >> 8) & 0xff);
      out += char(bits & 0xff);
      bits = 0;
      count = 0;
    }
  }
  if (count == 2) {
    out += char((bits >> 4) & 0xff);
  } else if (count == 3) {
    out += char((bits >> 10) & 0xff);
    out += char((bits >> 2) & 0xff);
  }
  return out;
}

// The range_end that selects every key starting with `prefix`: the prefix with its last
// byte below 0xff incremented and what follows dropped; "\0" (every key) if there is none.
inline std::string prefix_range_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

// ---------------------------------------------------------------------------------------
// Request bodies. Each is the JSON text to POST to the path named beside it.

namespace paths {
inline constexpr std::string_view range = "/v3/kv/range";
inline constexpr std::string_view put = "/v3/kv/put";
inline constexpr std::string_view txn = "/v3/kv/txn";
inline constexpr std::string_view delete_range = "/v3/kv/deleterange";
inline constexpr std::string_view lease_grant = "/v3/lease/grant";
inline constexpr std::string_view lease_keepalive = "/v3/lease/keepalive";
inline constexpr std::string_view lease_revoke = "/v3/lease/revoke";
inline constexpr std::string_view watch = "/v3/watch";
inline constexpr std::string_view authenticate = "/v3/auth/authenticate";
}  // namespace paths

struct range_options {
  std::string range_end;      // empty: the key alone
  std::int64_t limit = 0;     // 0: no limit
  std::int64_t revision = 0;  // 0: the current revision
  bool keys_only = false;
  bool serializable = false;  // false: linearizable, never stale
};

inline std::string range_request(std::string_view key, const range_options& options = {}) {
  json body = {{"key", base64_encode(key)}};
  if (!options.range_end.empty()) {
    body["range_end"] = base64_encode(options.range_end);
  }
  if (options.limit > 0) {
    body["limit"] = std::to_string(options.limit);
  }
  if (options.revision > 0) {
    body["revision"] = std::to_string(options.revision);
  }
  if (options.keys_only) {
    body["keys_only"] = true;
  }
  if (options.serializable) {
    body["serializable"] = true;
  }
  return body.dump();
}

namespace detail {

inline json put_operation(std::string_view key, std::string_view value, std::int64_t lease) {
  json put = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease != 0) {
    put["lease"] = std::to_string(lease);
  }
  return {{"request_put", std::move(put)}};
}

// A txn that puts `key` if `compare` holds, and otherwise reads the key back.
inline std::string guarded_put(json compare, std::string_view key, std::string_view value,
                               std::int64_t lease) {
  json body = {{"compare", json::array({std::move(compare)})},
               {"success", json::array({put_operation(key, value, lease)})},
               {"failure", json::array({{{"request_range", {{"key", base64_encode(key)}}}}})}};
  return body.dump();
}

}  // namespace detail

inline std::string put_request(std::string_view key, std::string_view value,
                               std::int64_t lease = 0) {
  return detail::put_operation(key, value, lease)["request_put"].dump();
}

// Puts only if the key does not exist (its create_revision is 0).
inline std::string create_if_absent_request(std::string_view key, std::string_view value,
                                            std::int64_t lease = 0) {
  return detail::guarded_put({{"key", base64_encode(key)},
                              {"target", "CREATE"},
                              {"result", "EQUAL"},
                              {"create_revision", "0"}},
                             key, value, lease);
}

// Puts only if the key's mod_revision is `expected` (an absent key's is 0).
inline std::string compare_and_swap_request(std::string_view key, std::string_view value,
                                            std::int64_t expected, std::int64_t lease = 0) {
  return detail::guarded_put({{"key", base64_encode(key)},
                              {"target", "MOD"},
                              {"result", "EQUAL"},
                              {"mod_revision", std::to_string(expected)}},
                             key, value, lease);
}

// Puts only if the key is held by `lease`: a node rewriting its own record never
// resurrects a record its lost lease took with it.
inline std::string put_if_lease_request(std::string_view key, std::string_view value,
                                        std::int64_t lease) {
  return detail::guarded_put({{"key", base64_encode(key)},
                              {"target", "LEASE"},
                              {"result", "EQUAL"},
                              {"lease", std::to_string(lease)}},
                             key, value, lease);
}

inline std::string delete_range_request(std::string_view key, std::string_view range_end = {},
                                        bool prev_kv = true) {
  json body = {{"key", base64_encode(key)}};
  if (!range_end.empty()) {
    body["range_end"] = base64_encode(range_end);
  }
  if (prev_kv) {
    body["prev_kv"] = true;
  }
  return body.dump();
}

inline std::string lease_grant_request(std::int64_t ttl_seconds) {
  return json{{"TTL", std::to_string(ttl_seconds)}}.dump();
}
inline std::string lease_keepalive_request(std::int64_t lease) {
  return json{{"ID", std::to_string(lease)}}.dump();
}
inline std::string lease_revoke_request(std::int64_t lease) {
  return json{{"ID", std::to_string(lease)}}.dump();
}

inline std::string authenticate_request(std::string_view user, std::string_view password) {
  return json{{"name", user}, {"password", password}}.dump();
}

struct watch_options {
  std::string range_end;
  std::int64_t start_revision = 0;  // 0: from the next change
  bool prev_kv = false;
  bool progress_notify = false;
};

inline std::string watch_create_request(std::string_view key, const watch_options& options = {}) {
  json create = {{"key", base64_encode(key)}};
  if (!options.range_end.empty()) {
    create["range_end"] = base64_encode(options.range_end);
  }
  if (options.start_revision > 0) {
    create["start_revision"] = std::to_string(options.start_revision);
  }
  if (options.prev_kv) {
    create["prev_kv"] = true;
  }
  if (options.progress_notify) {
    create["progress_notify"] = true;
  }
  return json{{"create_request", std::move(create)}}.dump();
}

// ---------------------------------------------------------------------------------------
// Responses.

// grpc status codes the client acts on.
namespace grpc_code {
inline constexpr int invalid_argument = 3;
inline constexpr int not_found = 5;
inline constexpr int permission_denied = 7;
inline constexpr int failed_precondition = 9;
inline constexpr int out_of_range = 11;  // compacted, or a future revision
inline constexpr int unavailable = 14;   // no leader, shutting down, timed out
inline constexpr int unauthenticated = 16;
}  // namespace grpc_code

// An error etcd answered, or a message the client could not read (malformed).
struct gateway_error {
  int code = 0;  // grpc status code; 0 when malformed
  std::string message;
  bool malformed = false;

  friend bool operator==(const gateway_error&, const gateway_error&) = default;
};

inline gateway_error malformed(std::string what) {
  return {0, std::move(what), true};
}

template <class T>
using gateway_result = std::variant<T, gateway_error>;

template <class T>
bool failed(const gateway_result<T>& r) noexcept {
  return r.index() == 1;
}

struct key_value {
  std::string key;  // decoded
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t version = 0;
  std::int64_t lease = 0;

  friend bool operator==(const key_value&, const key_value&) = default;
};

struct range_response {
  std::int64_t revision = 0;  // header.revision: the store's revision the read saw
  std::vector<key_value> kvs;
  bool more = false;
  std::int64_t count = 0;
};

struct txn_response {
  std::int64_t revision = 0;
  bool succeeded = false;
  std::vector<key_value> kvs;  // a failure branch's range: the key as it is
};

struct delete_response {
  std::int64_t revision = 0;
  std::int64_t deleted = 0;
  std::vector<key_value> prev_kvs;
};

struct lease_response {  // grant and keepalive
  std::int64_t revision = 0;
  std::int64_t id = 0;
  std::int64_t ttl = 0;  // 0 on keepalive: the lease is gone
};

struct empty_response {  // put, revoke
  std::int64_t revision = 0;
};

struct auth_response {
  std::string token;
};

struct watch_event {
  enum class kind { put, remove };
  kind type = kind::put;
  key_value kv;  // for remove: key and mod_revision only
  std::optional<key_value> prev_kv;
};

struct watch_response {
  std::int64_t revision = 0;  // header.revision, 0 when absent (as on a cancel)
  std::int64_t watch_id = 0;
  bool created = false;
  bool canceled = false;
  std::int64_t compact_revision = 0;
  std::string cancel_reason;
  std::vector<watch_event> events;

  // A progress notification: no events and nothing else but a header.
  bool is_progress() const noexcept {
    return events.empty() && !created && !canceled && compact_revision == 0 && revision != 0;
  }
};

namespace detail {

// Reads an int64 sent as a string (the gateway's way) or as a number; absent is 0.
inline bool read_int64(const json& object, const char* field, std::int64_t& out) {
  const auto it = object.find(field);
  if (it == object.end() || it->is_null()) {
    out = 0;
    return true;
  }
  if (it->is_number_integer()) {
    if (it->is_number_unsigned() && it->get<std::uint64_t>() > std::uint64_t(INT64_MAX)) {
      return false;
    }
    out = it->get<std::int64_t>();
    return true;
  }
  if (it->is_string()) {
    const auto& text = it->get_ref<const std::string&>();
    const auto* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return ec == std::errc{} && ptr == end && !text.empty();
  }
  return false;
}

inline bool read_bool(const json& object, const char* field, bool& out) {
  const auto it = object.find(field);
  if (it == object.end() || it->is_null()) {
    out = false;
    return true;
  }
  if (!it->is_boolean()) {
    return false;
  }
  out = it->get<bool>();
  return true;
}

inline bool read_bytes(const json& object, const char* field, std::string& out) {
  const auto it = object.find(field);
  if (it == object.end() || it->is_null()) {
    out.clear();
    return true;
  }
  if (!it->is_string()) {
    return false;
  }
  auto decoded = base64_decode(it->get_ref<const std::string&>());
  if (!decoded) {
    return false;
  }
  out = std::move(*decoded);
  return true;
}

inline bool read_header_revision(const json& object, std::int64_t& out) {
  const auto it = object.find("header");
  if (it == object.end() || it->is_null()) {
    out = 0;
    return true;
  }
  return it->is_object() && read_int64(*it, "revision", out);
}

inline bool read_kv(const json& object, key_value& kv) {
  return object.is_object() && read_bytes(object, "key", kv.key) &&
         read_bytes(object, "value", kv.value) &&
         read_int64(object, "create_revision", kv.create_revision) &&
         read_int64(object, "mod_revision", kv.mod_revision) &&
         read_int64(object, "version", kv.version) && read_int64(object, "lease", kv.lease);
}

inline bool read_kvs(const json& object, const char* field, std::vector<key_value>& out) {
  const auto it = object.find(field);
  if (it == object.end() || it->is_null()) {
    return true;
  }
  if (!it->is_array()) {
    return false;
  }
  for (const auto& item : *it) {
    key_value kv;
    if (!read_kv(item, kv)) {
      return false;
    }
    out.push_back(std::move(kv));
  }
  return true;
}

// Both error shapes: unary {"error":"text","message":"text","code":N} and in-stream
// {"error":{"grpc_code":N,"message":"text",...}}.
inline std::optional<gateway_error> find_error(const json& object) {
  const auto it = object.find("error");
  if (it == object.end() || it->is_null()) {
    return std::nullopt;
  }
  gateway_error error;
  std::int64_t code = 0;
  if (it->is_object()) {
    if (!read_int64(*it, "grpc_code", code)) {
      return malformed("an error whose grpc_code is not a number");
    }
    if (auto m = it->find("message"); m != it->end() && m->is_string()) {
      error.message = m->get<std::string>();
    }
  } else if (it->is_string()) {
    if (!read_int64(object, "code", code)) {
      return malformed("an error whose code is not a number");
    }
    if (auto m = object.find("message"); m != object.end() && m->is_string()) {
      error.message = m->get<std::string>();
    } else {
      error.message = it->get<std::string>();
    }
  } else {
    return malformed("an error that is neither text nor an object");
  }
  if (code < 0 || code > 1000) {
    return malformed("an error with an impossible code");
  }
  error.code = static_cast<int>(code);
  if (error.message.empty()) {  // never an empty reason in a log line
    error.message = "etcd answered an error with code " + std::to_string(code);
  }
  return error;
}

// Parses a response body: an error, or the object to read (inside "result" when wrapped, as
// stream messages are).
inline gateway_result<json> parse_body(std::string_view body) {
  // Without exceptions: a stream's garbage must not cost a throw per line.
  json object = json::parse(body.begin(), body.end(), nullptr, false);
  if (object.is_discarded()) {
    return malformed("a response that is not JSON");
  }
  if (!object.is_object()) {
    return malformed("a response that is not a JSON object");
  }
  if (auto error = find_error(object)) {
    return *error;
  }
  if (auto result = object.find("result"); result != object.end()) {
    if (!result->is_object()) {
      return malformed("a result that is not a JSON object");
    }
    json inner = std::move(*result);
    return inner;
  }
  return object;
}

template <class T, class Reader>
gateway_result<T> parse_with(std::string_view body, const char* what, Reader read) {
  auto parsed = parse_body(body);
  if (failed(parsed)) {
    return std::get<1>(std::move(parsed));
  }
  T out;
  if (!read(std::get<0>(parsed), out)) {
    return malformed(std::string("a ") + what + " response that does not have the expected shape");
  }
  return out;
}

}  // namespace detail

namespace detail {

// Readers of a parsed message's object (inside "result" for a stream): false if it does
// not have the shape etcd gives it.

inline bool read_range_response(const json& o, range_response& r) {
  return read_header_revision(o, r.revision) && read_kvs(o, "kvs", r.kvs) &&
         read_bool(o, "more", r.more) && read_int64(o, "count", r.count);
}

inline bool read_txn_response(const json& o, txn_response& r) {
  if (!read_header_revision(o, r.revision) || !read_bool(o, "succeeded", r.succeeded)) {
    return false;
  }
  const auto responses = o.find("responses");
  if (responses == o.end() || responses->is_null()) {
    return true;
  }
  if (!responses->is_array()) {
    return false;
  }
  for (const auto& item : *responses) {
    if (!item.is_object()) {
      return false;
    }
    if (auto range = item.find("response_range"); range != item.end()) {
      if (!range->is_object() || !read_kvs(*range, "kvs", r.kvs)) {
        return false;
      }
    }
  }
  return true;
}

inline bool read_delete_response(const json& o, delete_response& r) {
  return read_header_revision(o, r.revision) && read_int64(o, "deleted", r.deleted) &&
         read_kvs(o, "prev_kvs", r.prev_kvs);
}

inline bool read_lease_response(const json& o, lease_response& r) {
  return read_header_revision(o, r.revision) && read_int64(o, "ID", r.id) &&
         read_int64(o, "TTL", r.ttl);
}

inline bool read_empty_response(const json& o, empty_response& r) {
  return read_header_revision(o, r.revision);
}

inline bool read_auth_response(const json& o, auth_response& r) {
  const auto it = o.find("token");
  if (it == o.end() || !it->is_string()) {
    return false;
  }
  r.token = it->get<std::string>();
  return !r.token.empty();
}

inline bool read_watch_response(const json& o, watch_response& r) {
  if (!read_header_revision(o, r.revision) || !read_int64(o, "watch_id", r.watch_id) ||
      !read_bool(o, "created", r.created) || !read_bool(o, "canceled", r.canceled) ||
      !read_int64(o, "compact_revision", r.compact_revision)) {
    return false;
  }
  if (auto reason = o.find("cancel_reason"); reason != o.end() && reason->is_string()) {
    r.cancel_reason = reason->get<std::string>();
  }
  const auto events = o.find("events");
  if (events == o.end() || events->is_null()) {
    return true;
  }
  if (!events->is_array()) {
    return false;
  }
  for (const auto& item : *events) {
    if (!item.is_object()) {
      return false;
    }
    watch_event event;
    if (auto type = item.find("type"); type != item.end() && !type->is_null()) {
      if (!type->is_string()) {
        return false;
      }
      const auto& name = type->get_ref<const std::string&>();
      if (name == "DELETE") {
        event.type = watch_event::kind::remove;
      } else if (name != "PUT") {
        return false;
      }
    }
    const auto kv = item.find("kv");
    if (kv == item.end() || !read_kv(*kv, event.kv)) {
      return false;
    }
    if (auto prev = item.find("prev_kv"); prev != item.end() && !prev->is_null()) {
      event.prev_kv.emplace();
      if (!read_kv(*prev, *event.prev_kv)) {
        return false;
      }
    }
    r.events.push_back(std::move(event));
  }
  return true;
}

}  // namespace detail

inline gateway_result<range_response> parse_range_response(std::string_view body) {
  return detail::parse_with<range_response>(body, "range", detail::read_range_response);
}

inline gateway_result<txn_response> parse_txn_response(std::string_view body) {
  return detail::parse_with<txn_response>(body, "txn", detail::read_txn_response);
}

inline gateway_result<delete_response> parse_delete_response(std::string_view body) {
  return detail::parse_with<delete_response>(body, "deleterange", detail::read_delete_response);
}

inline gateway_result<lease_response> parse_lease_response(std::string_view body) {
  return detail::parse_with<lease_response>(body, "lease", detail::read_lease_response);
}

inline gateway_result<empty_response> parse_empty_response(std::string_view body) {
  return detail::parse_with<empty_response>(body, "etcd", detail::read_empty_response);
}

inline gateway_result<auth_response> parse_auth_response(std::string_view body) {
  return detail::parse_with<auth_response>(body, "authenticate", detail::read_auth_response);
}

inline gateway_result<watch_response> parse_watch_response(std::string_view line) {
  return detail::parse_with<watch_response>(line, "watch", detail::read_watch_response);
}

// ---------------------------------------------------------------------------------------
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
