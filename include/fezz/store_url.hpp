#pragma once

// Opening a control-plane store from a URL, as fezz_example and fezzctl do:
//
//   memory                              an in-memory store, this process only
//   etcd://host:port[,host:port...]     etcd over plain HTTP, endpoints in failover order
//   etcds://host:port[,host:port...]    etcd over TLS (the options' CA, certificate, key)
//
// Needs the fezz::etcd CMake target (OpenSSL), as etcd_store.hpp does.

#include <fezz/etcd_store.hpp>
#include <fezz/function_store.hpp>
#include <fezz/memory_store.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fezz {

// The endpoints of an etcd:// or etcds:// URL, each as http:// or https://; throws
// std::invalid_argument for anything else.
inline std::vector<std::string> etcd_endpoints_of(std::string_view url) {
  std::string_view scheme;
  if (url.starts_with("etcd://")) {
    scheme = "http://";
    url.remove_prefix(7);
  } else if (url.starts_with("etcds://")) {
    scheme = "https://";
    url.remove_prefix(8);
  } else {
    throw std::invalid_argument(
        "store URL '" + std::string(url) +
        "' is not memory, etcd://host:port[,...] or etcds://host:port[,...]");
  }
  std::vector<std::string> endpoints;
  while (!url.empty()) {
    const auto comma = url.find(',');
    const std::string_view endpoint = url.substr(0, comma);
    const auto colon = endpoint.rfind(':');
    if (endpoint.empty() || colon == std::string_view::npos || colon == 0 ||
        colon + 1 == endpoint.size() || endpoint.find('/') != std::string_view::npos) {
      throw std::invalid_argument("store URL: '" + std::string(endpoint) + "' is not host:port");
    }
    endpoints.push_back(std::string(scheme) + std::string(endpoint));
    url = comma == std::string_view::npos ? std::string_view{} : url.substr(comma + 1);
  }
  if (endpoints.empty()) {
    throw std::invalid_argument("store URL names no etcd endpoint");
  }
  return endpoints;
}

// The store `url` names, with `options` for an etcd store (its endpoints come from the
// URL). Throws std::invalid_argument for a bad URL, store_error when etcd cannot be
// reached within options.initial_sync_timeout.
inline std::shared_ptr<function_store> open_store(std::string_view url, etcd_options options = {}) {
  if (url == "memory") {
    return std::make_shared<memory_store>();
  }
  options.endpoints = etcd_endpoints_of(url);
  return std::make_shared<etcd_store>(std::move(options));
}

}  // namespace fezz
