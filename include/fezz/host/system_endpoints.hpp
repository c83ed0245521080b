#pragma once

// The host's own endpoints: /_health and /_metrics (JSON, or Prometheus text
// with ?format=prometheus).

#include <fezz/host/error_answers.hpp>
#include <fezz/host/host_state.hpp>
#include <fezz/request.hpp>
#include <fezz/response.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fezz::host {

inline bool is_system_path(std::string_view path) noexcept {
  return path == "/_health" || path == "/_metrics";
}

inline std::chrono::duration<double> seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::steady_clock::now() - t;
}

// The manifest fields /_metrics shows, from a compiled or a routed manifest.
template <class Manifest>
void add_manifest_fields(nlohmann::json& j, const Manifest& m) {
  j["version"] = m.version;
  j["method"] = m.method;
  j["path"] = m.path;
  j["timeout_seconds"] = m.timeout.count();
  j["description"] = m.description;
  j["max_concurrency"] = m.max_concurrency;
}

// One function as /_metrics reports it: its routed manifest if it is routed,
// else the manifest its code was written with.
inline nlohmann::json function_json(const function_status& s, const routing_snapshot& routes,
                                    const function_registry& registry) {
  const function_metrics& m = *s.metrics;
  nlohmann::json j;
  j["id"] = s.id;
  const routing_target* target = routes.target(s.id);
  const version_split::version* version = nullptr;
  if (const auto at = s.id.rfind('@'); target == nullptr && at != std::string::npos) {
    // The slot of one version of a function with several: "<id>@<version>".
    const routing_target* function = routes.target(std::string_view(s.id).substr(0, at));
    if (function != nullptr && function->versions) {
      version = function->versions->named(std::string_view(s.id).substr(at + 1));
      target = version != nullptr ? &version->target : nullptr;
    }
  }
  if (target != nullptr && target->info) {
    add_manifest_fields(j, target->info->manifest);
    j["routed"] = true;
    if (!target->info->module_sha256.empty()) {
      j["module"] = target->info->module_sha256;  // the code's SHA-256, when from a module
    }
    if (version != nullptr) {
      j["function"] = target->info->manifest.id;
      j["weight"] = version->weight;
    }
  } else {
    add_manifest_fields(j, registry.find(s.id)->registration().static_manifest);
    j["routed"] = false;
  }
  j["loaded"] = s.loaded;
  j["loading"] = s.loading;
  j["in_flight"] = s.in_flight;
  j["requests"] = read(m.requests);
  j["errors"] = read(m.errors);
  j["timeouts"] = read(m.timeouts);
  j["throttled"] = read(m.throttled);
  j["loads"] = read(m.loads);
  j["load_failures"] = read(m.load_failures);
  j["unloads"] = read(m.unloads);
  j["last_load_us"] = read(m.last_load_ns) / 1000;
  j["idle_seconds"] = s.loaded ? nlohmann::json(std::chrono::duration<double>(s.idle).count())
                               : nlohmann::json(nullptr);
  if (!s.last_error.empty()) {
    j["last_error"] = s.last_error;
  }
  const auto count = m.latency.count();
  j["latency"] = {{"count", count},
                  {"mean_us", count == 0 ? 0.0
                                         : static_cast<double>(m.latency.sum().count()) / 1000.0 /
                                               static_cast<double>(count)}};
  return j;
}

// The control-plane store as /_metrics reports it.
inline nlohmann::json store_json(const store_status& s) {
  return {{"kind", s.kind},
          {"endpoints", s.endpoints},
          {"connected", s.connected},
          {"revision", s.revision},
          {"seconds_since_last_event", s.seconds_since_last_event < 0
                                           ? nlohmann::json(nullptr)
                                           : nlohmann::json(s.seconds_since_last_event)},
          {"reconnects", s.reconnects},
          {"resyncs", s.resyncs},
          {"invalid_entries", s.invalid_entries}};
}

inline response metrics_json(const host_state& host, const routing_snapshot& routes) {
  const server_metrics& sm = host.metrics;
  nlohmann::json functions = nlohmann::json::array();
  for (const auto& status : host.registry.status()) {
    functions.push_back(function_json(status, routes, host.registry));
  }
  nlohmann::json body{{"node", host.settings.node()},
                      {"uptime_seconds", seconds_since(host.started).count()},
                      {"draining", host.draining.load()},
                      {"connections",
                       {{"active", read(sm.connections_active)},
                        {"total", read(sm.connections_total)},
                        {"refused", read(sm.connections_refused)}}},
                      {"requests",
                       {{"total", read(sm.requests_total)},
                        {"rejected", read(sm.rejected_total)},
                        {"throttled", read(sm.throttled_total)},
                        {"1xx", read(sm.responses[0])},
                        {"2xx", read(sm.responses[1])},
                        {"3xx", read(sm.responses[2])},
                        {"4xx", read(sm.responses[3])},
                        {"5xx", read(sm.responses[4])}}},
                      {"functions", std::move(functions)}};
  if (host.store != nullptr) {
    body["store"] = store_json(host.store->status());
  }
  return response::json(body);
}

// A Prometheus label value: backslash, quote and newline escaped.
inline std::string label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (const char c : v) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// A function's Prometheus labels: `function="ID"`, and `version="V"` for one version of
// several, so that a query can sum over versions or compare them.
inline std::string function_labels(const function_status& s) {
  std::string labels = "function=\"" + label_value(s.function) + '"';
  if (!s.version.empty()) {
    labels += ",version=\"" + label_value(s.version) + '"';
  }
  return labels;
}

inline response metrics_prometheus(const host_state& host) {
  const auto statuses = host.registry.status();
  std::vector<std::string> labels;
  labels.reserve(statuses.size());
  for (const auto& s : statuses) {
    labels.push_back(function_labels(s));
  }
  std::string out;
  auto family = [&](std::string_view name, std::string_view type, std::string_view help,
                    auto value_of) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    for (std::size_t i = 0; i < statuses.size(); ++i) {
      fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", name, labels[i],
                     value_of(statuses[i]));
    }
  };
  family("fezz_requests_total", "counter", "Requests a function answered.",
         [&](const function_status& s) { return read(s.metrics->requests); });
  family("fezz_errors_total", "counter", "5xx answers of a function (exceptions, timeouts, loads).",
         [&](const function_status& s) { return read(s.metrics->errors); });
  family("fezz_timeouts_total", "counter", "Calls cut off at the function's timeout (504).",
         [&](const function_status& s) { return read(s.metrics->timeouts); });
  family("fezz_throttled_total", "counter",
         "Requests refused with 429 at the function's or the host's cap on calls.",
         [&](const function_status& s) { return read(s.metrics->throttled); });
  family("fezz_loads_total", "counter", "Successful loads (construct + on_load).",
         [&](const function_status& s) { return read(s.metrics->loads); });
  family("fezz_load_failures_total", "counter", "Failed loads.",
         [&](const function_status& s) { return read(s.metrics->load_failures); });
  family("fezz_unloads_total", "counter", "Unloads (on_unload + destroy).",
         [&](const function_status& s) { return read(s.metrics->unloads); });
  family("fezz_loaded", "gauge", "1 while an instance is loaded.",
         [](const function_status& s) { return s.loaded ? 1 : 0; });
  family("fezz_in_flight", "gauge", "Calls running now.",
         [](const function_status& s) { return s.in_flight; });
  family("fezz_last_load_seconds", "gauge", "Duration of the last load.",
         [&](const function_status& s) {
           return static_cast<double>(read(s.metrics->last_load_ns)) / 1e9;
         });

  out +=
      "# HELP fezz_request_duration_seconds Time from routing to the function's response.\n"
      "# TYPE fezz_request_duration_seconds histogram\n";
  for (std::size_t n = 0; n < statuses.size(); ++n) {
    const latency_histogram& h = statuses[n].metrics->latency;
    const std::string& series = labels[n];
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < latency_histogram::bounds_us.size(); ++i) {
      cumulative += h.bucket(i);
      fmt::format_to(std::back_inserter(out),
                     "fezz_request_duration_seconds_bucket{{{},le=\"{}\"}} {}\n", series,
                     static_cast<double>(latency_histogram::bounds_us[i]) / 1e6, cumulative);
    }
    cumulative += h.bucket(latency_histogram::bounds_us.size());
    fmt::format_to(std::back_inserter(out),
                   "fezz_request_duration_seconds_bucket{{{},le=\"+Inf\"}} {}\n"
                   "fezz_request_duration_seconds_sum{{{}}} {}\n"
                   "fezz_request_duration_seconds_count{{{}}} {}\n",
                   series, cumulative, series, std::chrono::duration<double>(h.sum()).count(),
                   series, cumulative);
  }

  const server_metrics& sm = host.metrics;
  fmt::format_to(std::back_inserter(out),
                 "# HELP fezz_http_connections_active Open client connections.\n"
                 "# TYPE fezz_http_connections_active gauge\n"
                 "fezz_http_connections_active {}\n"
                 "# HELP fezz_http_connections_total Accepted client connections.\n"
                 "# TYPE fezz_http_connections_total counter\n"
                 "fezz_http_connections_total {}\n"
                 "# HELP fezz_http_requests_total Requests received, by response status class.\n"
                 "# TYPE fezz_http_requests_total counter\n",
                 read(sm.connections_active), read(sm.connections_total));
  for (std::size_t i = 0; i < sm.responses.size(); ++i) {
    fmt::format_to(std::back_inserter(out), "fezz_http_requests_total{{class=\"{}xx\"}} {}\n",
                   i + 1, read(sm.responses[i]));
  }
  fmt::format_to(std::back_inserter(out),
                 "# HELP fezz_uptime_seconds Seconds since the server started.\n"
                 "# TYPE fezz_uptime_seconds gauge\n"
                 "fezz_uptime_seconds {}\n",
                 seconds_since(host.started).count());
  if (host.store != nullptr) {
    const store_status st = host.store->status();
    const std::string kind = label_value(st.kind);
    const auto store_family = [&](std::string_view name, std::string_view type,
                                  std::string_view help, auto value) {
      fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n{}{{kind=\"{}\"}} {}\n",
                     name, help, name, type, name, kind, value);
    };
    store_family("fezz_store_connected", "gauge", "1 while the store follows its backend.",
                 st.connected ? 1 : 0);
    store_family("fezz_store_revision", "gauge", "The last revision the store has applied.",
                 st.revision);
    if (st.seconds_since_last_event >= 0) {
      store_family("fezz_store_seconds_since_last_event", "gauge",
                   "Seconds since the store saw a change.", st.seconds_since_last_event);
    }
    store_family("fezz_store_reconnects_total", "counter",
                 "Connections to the store's backend re-established.", st.reconnects);
    store_family("fezz_store_resyncs_total", "counter",
                 "Full re-lists of the store after a gap (compaction).", st.resyncs);
    store_family("fezz_store_invalid_entries_total", "counter",
                 "Store entries skipped as invalid, each counted once.", st.invalid_entries);
  }
  return response::text(std::move(out))
      .header(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
}

// Answers a system path; only GET and HEAD are allowed.
inline response system_response(const host_state& host, const routing_snapshot& routes,
                                const request& req) {
  if (req.verb() != http::verb::get && req.verb() != http::verb::head) {
    static constexpr std::string_view allowed[] = {"GET", "HEAD"};
    return method_not_allowed(req.method(), req.path(), allowed);
  }
  if (req.path() == "/_health") {
    if (host.draining.load(std::memory_order_relaxed)) {
      return response::text("DRAINING", http::status::service_unavailable);
    }
    return response::text("OK");
  }
  const auto format = req.query_param("format");
  if (format && *format == "prometheus") {
    return metrics_prometheus(host);
  }
  if (format && *format != "json") {
    return response::error(http::status::bad_request,
                           fmt::format("unknown format '{}': use json or prometheus", *format));
  }
  return metrics_json(host, routes);
}

}  // namespace fezz::host
