#pragma once

// How etcd_store's parts call etcd: one unary call through the gateway_client with its
// answer read by one of the parse_*_response functions, and a failure turned into the
// store_error a caller sees.

#include <fezz/etcd/gateway_client.hpp>
#include <fezz/etcd/gateway_responses.hpp>
#include <fezz/function_store.hpp>

#include <boost/asio/awaitable.hpp>

#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace fezz::etcd {

// POSTs `body` to `path` and reads the answer with `parse` (one of parse_*_response).
template <class Parse>
boost::asio::awaitable<std::invoke_result_t<Parse, std::string_view>> call(gateway_client& client,
                                                                           std::string_view path,
                                                                           std::string body,
                                                                           Parse parse) {
  using result = std::invoke_result_t<Parse, std::string_view>;
  auto answer = co_await client.call(path, std::move(body));
  if (failed(answer)) {
    co_return result(std::get<1>(std::move(answer)));
  }
  co_return parse(std::get<0>(answer));
}

// Turns a failed call into store_error.
template <class T>
T value_or_throw(gateway_result<T> result, std::string_view what) {
  if (failed(result)) {
    const auto& error = std::get<1>(result);
    throw store_error("cannot " + std::string(what) + ": " + one_line(error.message));
  }
  return std::get<0>(std::move(result));
}

}  // namespace fezz::etcd
