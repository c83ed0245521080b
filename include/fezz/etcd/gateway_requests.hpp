#pragma once

// The bodies of the requests a client POSTs to etcd v3's HTTP/JSON gateway (etcd 3.4's
// grpc-gateway under /v3/), with no I/O: each is the JSON text to POST to the path in
// `paths` named beside it. Keys and values go as base64, int64 values as JSON strings.

#include <fezz/detail/base64.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace fezz::etcd {

using json = nlohmann::json;

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
  json body = {{"key", fezz::detail::base64_encode(key)}};
  if (!options.range_end.empty()) {
    body["range_end"] = fezz::detail::base64_encode(options.range_end);
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
  json put = {{"key", fezz::detail::base64_encode(key)},
              {"value", fezz::detail::base64_encode(value)}};
  if (lease != 0) {
    put["lease"] = std::to_string(lease);
  }
  return {{"request_put", std::move(put)}};
}

// A txn that puts `key` if `compare` holds, and otherwise reads the key back.
inline std::string guarded_put(json compare, std::string_view key, std::string_view value,
                               std::int64_t lease) {
  json body = {
      {"compare", json::array({std::move(compare)})},
      {"success", json::array({put_operation(key, value, lease)})},
      {"failure", json::array({{{"request_range", {{"key", fezz::detail::base64_encode(key)}}}}})}};
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
  return detail::guarded_put({{"key", fezz::detail::base64_encode(key)},
                              {"target", "CREATE"},
                              {"result", "EQUAL"},
                              {"create_revision", "0"}},
                             key, value, lease);
}

// Puts only if the key's mod_revision is `expected` (an absent key's is 0).
inline std::string compare_and_swap_request(std::string_view key, std::string_view value,
                                            std::int64_t expected, std::int64_t lease = 0) {
  return detail::guarded_put({{"key", fezz::detail::base64_encode(key)},
                              {"target", "MOD"},
                              {"result", "EQUAL"},
                              {"mod_revision", std::to_string(expected)}},
                             key, value, lease);
}

// Puts only if the key is held by `lease`: a node rewriting its own record never
// resurrects a record its lost lease took with it.
inline std::string put_if_lease_request(std::string_view key, std::string_view value,
                                        std::int64_t lease) {
  return detail::guarded_put({{"key", fezz::detail::base64_encode(key)},
                              {"target", "LEASE"},
                              {"result", "EQUAL"},
                              {"lease", std::to_string(lease)}},
                             key, value, lease);
}

inline std::string delete_range_request(std::string_view key, std::string_view range_end = {},
                                        bool prev_kv = true) {
  json body = {{"key", fezz::detail::base64_encode(key)}};
  if (!range_end.empty()) {
    body["range_end"] = fezz::detail::base64_encode(range_end);
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
  json create = {{"key", fezz::detail::base64_encode(key)}};
  if (!options.range_end.empty()) {
    create["range_end"] = fezz::detail::base64_encode(options.range_end);
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

}  // namespace fezz::etcd
