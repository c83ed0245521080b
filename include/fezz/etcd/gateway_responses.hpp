#pragma once

// Reading the answers of etcd v3's HTTP/JSON gateway (etcd 3.4's grpc-gateway under /v3/),
// with no I/O: a unary response body or one watch message becomes its typed response, or
// the gateway_error it holds or why it cannot be read. The gateway's quirks, as measured
// on etcd 3.4.23:
//   - keys and values are base64; int64 values come back as JSON strings;
//   - fields at their zero value are omitted: a PUT event has no "type", a failed txn has
//     no "succeeded", a missing key has no "kvs";
//   - a unary error is {"error","message","code"}; an error inside a stream is
//     {"error":{"grpc_code","http_code","message","http_status"}}.

#include <fezz/detail/base64.hpp>

#include <nlohmann/json.hpp>

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace fezz::etcd {

using json = nlohmann::json;

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

// `text` (an error's message, a body's excerpt) fit for one log line.
inline std::string one_line(std::string text) {
  for (auto& c : text) {
    if (c == '\n' || c == '\r') {
      c = ' ';
    }
  }
  return text;
}

template <class T>
using gateway_result = std::variant<T, gateway_error>;

template <class T>
bool failed(const gateway_result<T>& r) noexcept {
  return r.index() == 1;
}

namespace detail {

inline bool is_token_problem(const gateway_error& error) {
  return error.code == grpc_code::unauthenticated ||
         error.message.find("invalid auth token") != std::string::npos ||
         error.message.find("user name is empty") != std::string::npos;
}

}  // namespace detail

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
  auto decoded = fezz::detail::base64_decode(it->get_ref<const std::string&>());
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

}  // namespace fezz::etcd
