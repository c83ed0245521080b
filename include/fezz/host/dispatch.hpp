#pragma once

// One parsed request to one response: route it on the current snapshot,
// lease the function (loading it if needed), call fetch with the function's
// deadline, and turn every failure into a precise status.

#include <fezz/detail/async.hpp>
#include <fezz/detail/random.hpp>
#include <fezz/error.hpp>
#include <fezz/function_store.hpp>
#include <fezz/host/admission.hpp>
#include <fezz/host/error_answers.hpp>
#include <fezz/host/host_state.hpp>
#include <fezz/host/system_endpoints.hpp>
#include <fezz/request.hpp>
#include <fezz/response.hpp>

#include <fmt/format.h>
#include <boost/asio/awaitable.hpp>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace fezz::host {

// The answer for a path no route matches under this method.
inline response unrouted(const routing_snapshot& routes, const request& req) {
  const auto allowed = routes.routes.allowed_methods(req.path());
  if (allowed.empty()) {
    return not_found(req.path());
  }
  if (req.verb() == http::verb::unknown) {
    return not_implemented(req.method());
  }
  return method_not_allowed(req.method(), req.path(), allowed);
}

// The answer for an exception a function let out.
inline response answer_for(const std::exception_ptr& thrown, host_state& host,
                           const owned_manifest& manifest, std::string_view request_id) {
  try {
    std::rethrow_exception(thrown);
  } catch (const fezz::error& e) {
    return response(e);
  } catch (const std::exception& e) {
    host.request_log->log(host.log(), spdlog::level::err, "[{}] '{}' threw: {}", request_id,
                          manifest.id, e.what());
  } catch (...) {
    host.request_log->log(host.log(), spdlog::level::err,
                          "[{}] '{}' threw a non-standard exception", request_id, manifest.id);
  }
  // The exception's text stays in the log: it may hold what a client should not see.
  return response::error(http::status::internal_server_error,
                         fmt::format("function '{}' failed", manifest.id));
}

// For a function with several live versions, the version this request goes to:
// the one x-fezz-version names, else one drawn by weight. Or the answer instead.
inline std::variant<const routing_target*, response> pick_version(const version_split& split,
                                                                  const request& req,
                                                                  std::string_view function_id) {
  const std::string_view named = req.header("x-fezz-version");
  if (!named.empty()) {
    if (!is_valid_version_name(named)) {
      return response::error(http::status::bad_request,
                             "x-fezz-version must name a version: 1 to 64 of A-Z a-z 0-9 . _ -");
    }
    if (const auto* v = split.named(named)) {
      return &v->target;
    }
    std::string live;
    for (const auto& v : split.versions) {
      live += (live.empty() ? "" : ", ") + v.name;
    }
    return response::error(http::status::not_found,
                           fmt::format("'{}' has no live version \"{}\" (x-fezz-version); live: {}",
                                       function_id, named, live));
  }
  if (split.total_weight == 0) {
    return response::error(http::status::service_unavailable,
                           fmt::format("every version of '{}' has weight 0: only requests that "
                                       "name one with x-fezz-version are served",
                                       function_id))
        .header(http::field::retry_after, "1");
  }
  return &split.pick(detail::thread_random_below(split.total_weight)).target;
}

// Calls fetch. A synchronous function's answer (or exception) comes back at
// once; a coroutine comes back to be awaited.
inline detail::fetch_outcome start_fetch(host_state& host, function_lease& lease, request& req,
                                         context& ctx) {
  try {
    return lease.instance().fetch(req, ctx);
  } catch (...) {
    return answer_for(std::current_exception(), host, ctx.manifest(), ctx.request_id());
  }
}

// How long one call may take: the manifest's timeout, or less when the proxy
// says when it stops waiting (Envoy's x-envoy-expected-rq-timeout-ms).
inline std::chrono::milliseconds call_budget(const request& req, const owned_manifest& manifest) {
  const std::chrono::milliseconds timeout = manifest.timeout;
  const std::string_view given = req.header("x-envoy-expected-rq-timeout-ms");
  std::uint64_t ms = 0;
  const auto [end, ec] = std::from_chars(given.data(), given.data() + given.size(), ms);
  if (given.empty() || ec != std::errc{} || end != given.data() + given.size() || ms == 0) {
    return timeout;
  }
  return ms < static_cast<std::uint64_t>(timeout.count()) ? std::chrono::milliseconds(ms) : timeout;
}

// "2 s", or "150 ms" when the budget is not whole seconds.
inline std::string describe(std::chrono::milliseconds budget) {
  return budget.count() % 1000 == 0 ? fmt::format("{} s", budget.count() / 1000)
                                    : fmt::format("{} ms", budget.count());
}

// Awaits a coroutine fetch until its deadline: past it, the coroutine is cancelled and 504 answers.
inline boost::asio::awaitable<response> await_fetch(host_state& host, function_lease& lease,
                                                    boost::asio::awaitable<response> call,
                                                    const context& ctx,
                                                    std::chrono::milliseconds budget) {
  const owned_manifest& manifest = ctx.manifest();
  try {
    auto answer = co_await detail::complete_by(std::move(call), ctx.deadline());
    if (answer) {
      co_return std::move(*answer);
    }
  } catch (...) {
    co_return answer_for(std::current_exception(), host, manifest, ctx.request_id());
  }
  function_metrics::bump(lease.metrics().timeouts);
  host.request_log->log(host.log(), spdlog::level::warn, "[{}] '{}' timed out after {}",
                        ctx.request_id(), manifest.id, describe(budget));
  co_return response::error(
      http::status::gateway_timeout,
      fmt::format("function '{}' did not answer within {}", manifest.id, describe(budget)));
}

inline void record_answer(function_metrics& metrics, const response& answer,
                          std::chrono::steady_clock::time_point started) {
  if (answer.status_code() >= 500) {
    function_metrics::bump(metrics.errors);
  }
  metrics.latency.record(std::chrono::steady_clock::now() - started);
}

// The path that waits: loading the function first, or awaiting a coroutine
// fetch. It owns what the call references (request, target, lease).
inline boost::asio::awaitable<response> serve_awaiting(
    host_state& host, routing_target target, request req, call_permit permit,
    std::optional<function_lease> lease, std::chrono::steady_clock::time_point started,
    std::chrono::milliseconds budget, std::string_view request_id) {
  std::optional<response> answer;
  if (!lease) {
    try {
      lease.emplace(co_await target.slot->acquire());
    } catch (const fezz::error& e) {
      answer.emplace(response(e).header(http::field::retry_after, "1"));
    }
  }
  if (lease) {
    context ctx(*target.info, started + budget, request_id);
    auto outcome = start_fetch(host, *lease, req, ctx);
    if (auto* ready = std::get_if<response>(&outcome)) {
      answer.emplace(std::move(*ready));
    } else {
      answer.emplace(
          co_await await_fetch(host, *lease, std::get<1>(std::move(outcome)), ctx, budget));
    }
    lease.reset();  // before the response is written: the instance is free to unload
  }
  record_answer(target.slot->metrics(), *answer, started);
  permit = {};  // answered: the call leaves the caps
  co_return std::move(*answer);
}

// Routes one request and calls its function. A loaded synchronous function
// answers here and now, with no coroutine frame; anything that must wait
// (a load, a coroutine fetch) comes back as an awaitable.
inline detail::fetch_outcome dispatch(host_state& host, routing_cache& cache,
                                      request::message_type message, std::string_view request_id) {
  request req(std::move(message));
  const routing_snapshot& routes = cache.get(host.routing);
  if (is_system_path(req.path())) {
    return system_response(host, routes, req);
  }
  auto match = routes.routes.find(req.path(), req.method());
  if (!match) {
    return unrouted(routes, req);
  }
  const routing_target* target = routes.target(match->matched->function_id);
  if (target == nullptr) {
    return not_found(req.path());
  }
  if (target->versions) {
    auto picked = pick_version(*target->versions, req, match->matched->function_id);
    if (auto* answer = std::get_if<response>(&picked)) {
      return std::move(*answer);
    }
    target = std::get<const routing_target*>(picked);
  }
  req.params(std::move(match->params));

  const auto started = std::chrono::steady_clock::now();
  function_metrics& metrics = target->slot->metrics();
  function_metrics::bump(metrics.requests);
  auto admitted = admit(host, *target);
  if (auto* refusal = std::get_if<response>(&admitted)) {
    return std::move(*refusal);
  }
  auto& permit = std::get<call_permit>(admitted);
  const auto budget = call_budget(req, target->info->manifest);
  auto lease = target->slot->try_acquire();
  if (!lease || lease->instance().fetch_is_coroutine()) {
    return serve_awaiting(host, *target, std::move(req), std::move(permit), std::move(lease),
                          started, budget, request_id);
  }
  context ctx(*target->info, started + budget, request_id);
  response answer = std::get<response>(start_fetch(host, *lease, req, ctx));
  lease.reset();
  record_answer(metrics, answer, started);
  return answer;
}

}  // namespace fezz::host
