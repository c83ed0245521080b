#pragma once

// One parsed request to one response: route it on the current snapshot,
// lease the function (loading it if needed), call fetch with the function's
// deadline, and turn every failure into a precise status.

#include <fezz/detail/complete_by.hpp>
#include <fezz/detail/host_state.hpp>
#include <fezz/detail/system_endpoints.hpp>
#include <fezz/error.hpp>
#include <fezz/request.hpp>
#include <fezz/response.hpp>

#include <fmt/format.h>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <exception>
#include <string>
#include <string_view>

namespace fezz::detail {

// The answer for a path no route matches under this method.
inline response unrouted(const routing_snapshot& routes, const request& req) {
  const auto allowed = routes.routes.allowed_methods(req.path());
  if (allowed.empty()) {
    return response::error(http::status::not_found,
                           fmt::format("no function is routed at {}", req.path()));
  }
  if (req.verb() == http::verb::unknown) {
    return response::error(http::status::not_implemented,
                           fmt::format("method {} is not implemented", req.method()));
  }
  return response::error(http::status::method_not_allowed,
                         fmt::format("{} is not allowed on {}", req.method(), req.path()))
      .header(http::field::allow, fmt::format("{}", fmt::join(allowed, ", ")));
}

// Calls the function; every way it can fail becomes a response here.
inline boost::asio::awaitable<response> call_function(host_state& host,
                                                      const routing_target& target,
                                                      function_lease& lease, request& req,
                                                      std::string_view request_id) {
  const owned_manifest& manifest = target.info->manifest;
  context ctx(*target.info, std::chrono::steady_clock::now() + manifest.timeout, request_id);
  try {
    auto outcome = lease.instance().fetch(req, ctx);
    if (auto* ready = std::get_if<response>(&outcome)) {
      co_return std::move(*ready);
    }
    auto answer = co_await complete_by(std::get<1>(std::move(outcome)), ctx.deadline());
    if (!answer) {
      function_metrics::bump(lease.metrics().timeouts);
      host.log().warn("[{}] '{}' timed out after {} s", request_id, manifest.id,
                      manifest.timeout.count());
      co_return response::error(http::status::gateway_timeout,
                                fmt::format("function '{}' did not answer within {} s", manifest.id,
                                            manifest.timeout.count()));
    }
    co_return std::move(*answer);
  } catch (const fezz::error& e) {
    co_return response(e);
  } catch (const std::exception& e) {
    host.log().error("[{}] '{}' threw: {}", request_id, manifest.id, e.what());
  } catch (...) {
    host.log().error("[{}] '{}' threw a non-standard exception", request_id, manifest.id);
  }
  // The exception's text stays in the log: it may hold what a client should not see.
  co_return response::error(http::status::internal_server_error,
                            fmt::format("function '{}' failed", manifest.id));
}

inline boost::asio::awaitable<response> dispatch(host_state& host, routing_cache& cache,
                                                 request::message_type message,
                                                 std::string_view request_id) {
  request req(std::move(message));
  const routing_snapshot& routes = cache.get(host.routing);
  if (is_system_path(req.path())) {
    co_return system_response(host, routes, req);
  }
  auto match = routes.routes.find(req.path(), req.method());
  if (!match) {
    co_return unrouted(routes, req);
  }
  const routing_target* target = routes.target(match->matched->function_id);
  if (target == nullptr) {
    co_return response::error(http::status::not_found,
                              fmt::format("no function is routed at {}", req.path()));
  }
  req.params(std::move(match->params));

  const auto started = std::chrono::steady_clock::now();
  function_metrics& metrics = target->slot->metrics;
  function_metrics::bump(metrics.requests);
  auto lease = host.registry.try_acquire(*target->slot);
  std::optional<response> answer;
  if (!lease) {
    try {
      lease.emplace(co_await host.registry.acquire(target->slot));
    } catch (const fezz::error& e) {
      answer.emplace(response(e).header(http::field::retry_after, "1"));
    }
  }
  if (lease) {
    answer.emplace(co_await call_function(host, *target, *lease, req, request_id));
    lease.reset();  // before the response is written: the instance is free to unload
  }
  if (answer->status_code() >= 500) {
    function_metrics::bump(metrics.errors);
  }
  metrics.latency.record(std::chrono::steady_clock::now() - started);
  co_return std::move(*answer);
}

}  // namespace fezz::detail
