#pragma once

// The flags that choose and reach a control-plane store, the same in every example
// program: --store URL (memory, etcd://host:port[,...], etcds://...), --store-prefix,
// --etcd-ca, --etcd-cert, --etcd-key, --etcd-user; the password comes from
// FEZZ_ETCD_PASSWORD only, never from the command line, where others could read it.

#include "command_line.hpp"

#include <fezz/store_url.hpp>

#include <spdlog/logger.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace examples {

inline const std::vector<std::string_view> store_flags = {"store",     "store-prefix", "etcd-ca",
                                                          "etcd-cert", "etcd-key",     "etcd-user"};

// Opens the store the flags name (`default_url` if none). Exits 2 for a bad URL; throws
// fezz::store_error when the store cannot be reached.
inline std::shared_ptr<fezz::function_store> open_store(
    const command_line& flags, std::string_view default_url, std::shared_ptr<spdlog::logger> logger,
    std::chrono::milliseconds initial_sync_timeout = std::chrono::seconds(10)) {
  fezz::etcd_options options;
  options.initial_sync_timeout = initial_sync_timeout;
  options.prefix = flags.text("store-prefix", fezz::default_store_prefix);
  options.ca_file = flags.text("etcd-ca");
  options.cert_file = flags.text("etcd-cert");
  options.key_file = flags.text("etcd-key");
  options.user = flags.text("etcd-user");
  if (const char* password = std::getenv("FEZZ_ETCD_PASSWORD"); password != nullptr) {
    options.password = password;
  }
  options.logger = std::move(logger);
  try {
    return fezz::open_store(flags.text("store", default_url), std::move(options));
  } catch (const std::invalid_argument& e) {
    flags.fail(e.what());
  }
}

}  // namespace examples
