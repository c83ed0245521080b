#pragma once

// Where an etcd member listens: the endpoints a user configures ("host:port",
// "http://host:port", "https://host:port"), parsed into host, port and whether to speak TLS.

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fezz::etcd {

struct endpoint {
  std::string host;
  std::string port;
  bool tls = false;

  std::string to_string() const {
    const bool ipv6 = host.find(':') != std::string::npos;
    return std::string(tls ? "https://" : "http://") + (ipv6 ? "[" + host + "]" : host) + ":" +
           port;
  }
};

// Parses "host:port", "http://host:port", "https://host:port" or "[::1]:port"; throws
// std::invalid_argument with the reason.
inline endpoint parse_endpoint(std::string_view text, bool tls_by_default) {
  endpoint result;
  result.tls = tls_by_default;
  if (text.starts_with("https://")) {
    result.tls = true;
    text.remove_prefix(8);
  } else if (text.starts_with("http://")) {
    result.tls = false;  // explicit, whatever the default
    text.remove_prefix(7);
  }
  while (!text.empty() && text.back() == '/') {
    text.remove_suffix(1);
  }
  std::size_t colon = std::string_view::npos;
  if (text.starts_with("[")) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      throw std::invalid_argument("etcd endpoint '" + std::string(text) +
                                  "': expected [address]:port");
    }
    result.host = std::string(text.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      throw std::invalid_argument("etcd endpoint '" + std::string(text) + "': expected host:port");
    }
    result.host = std::string(text.substr(0, colon));
  }
  result.port = std::string(text.substr(colon + 1));
  if (result.host.empty() || result.port.empty() ||
      result.port.find_first_not_of("0123456789") != std::string::npos) {
    throw std::invalid_argument("etcd endpoint '" + std::string(text) + "': expected host:port");
  }
  return result;
}

}  // namespace fezz::etcd
