// Uses fezz::etcd, the etcd store's target (fezz plus OpenSSL), from the package.
#include <fezz/etcd_store.hpp>

#include <iostream>

int main() {
  fezz::etcd_options options;
  options.endpoints = {"https://127.0.0.1:2379"};
  const auto entry = fezz::function_entry(fezz::owned_manifest("hello", "v1", "GET", "/hello"));
  const auto parsed = fezz::parse_function_entry(fezz::to_json(entry), "hello");
  std::cout << (parsed && parsed.value() == entry ? "fezz::etcd ok" : "fezz::etcd BROKEN") << " "
            << options.prefix << "\n";
  return parsed ? 0 : 1;
}
