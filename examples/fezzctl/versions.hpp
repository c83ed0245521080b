#pragma once

// fezzctl's deploy, split and undeploy: edits of a function entry's live versions
// ("versions" in docs/control-plane.md). Each edit is written with compare-and-swap
// on the entry's revision, so two operators never lose each other's change.

#include <fezz/detail/sha256.hpp>
#include <fezz/function_store.hpp>
#include <fezz/module.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <numeric>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace fezzctl {

// A failure the user should read: one line, exit 1.
struct failure {
  std::string reason;
};

// The whole of `file`, or of standard input for "-".
inline std::string read_all(const std::string& file) {
  if (file == "-") {
    return {std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw failure{"cannot read " + file};
  }
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Every version's share of the requests, as written by split: "v1=90 v2=10".
inline std::string describe_versions(const fezz::function_entry& entry) {
  std::string out;
  for (const auto& v : entry.versions) {
    out += fmt::format("{}{}={}", out.empty() ? "" : " ", v.name, v.weight);
  }
  return out;
}

// `entry` with `added` taking `percent` % of the requests, and the other versions
// sharing the rest in the proportions they had. Without `percent`: `added` alone.
inline fezz::function_entry with_version(fezz::function_entry entry, fezz::function_version added,
                                         std::optional<std::uint32_t> percent) {
  if (!percent) {
    entry.versions = {std::move(added)};
    entry.module.reset();
    return entry;
  }
  if (entry.module) {  // one module so far: it becomes a version named after the entry's
    entry.versions = {{entry.manifest.version, 1, *entry.module}};
    entry.module.reset();
  }
  std::erase_if(entry.versions, [&](const auto& v) { return v.name == added.name; });
  if (entry.versions.empty() && *percent < 100) {
    throw failure{
        fmt::format("'{}' has no other module version to share the requests with: "
                    "deploy without --weight",
                    entry.id())};
  }
  // The others' weights become whole percentages of the rest, largest remainders first.
  const std::uint64_t rest = 100 - *percent;
  const std::uint64_t total =
      std::accumulate(entry.versions.begin(), entry.versions.end(), std::uint64_t{0},
                      [](std::uint64_t sum, const auto& v) { return sum + v.weight; });
  std::vector<std::pair<std::uint64_t, std::size_t>> remainders;  // (remainder, index)
  std::uint64_t given = 0;
  for (std::size_t i = 0; i < entry.versions.size(); ++i) {
    auto& v = entry.versions[i];
    const std::uint64_t scaled = total == 0 ? 0 : rest * v.weight;
    v.weight = static_cast<std::uint32_t>(total == 0 ? 0 : scaled / total);
    given += v.weight;
    remainders.emplace_back(total == 0 ? 0 : scaled % total, i);
  }
  std::sort(remainders.begin(), remainders.end(), std::greater<>());
  for (std::size_t i = 0; total != 0 && given < rest; ++i, ++given) {
    ++entry.versions[remainders[i].second].weight;
  }
  added.weight = *percent;
  entry.versions.push_back(std::move(added));
  return entry;
}

// `entry` with these weights; a version not named gets 0.
inline fezz::function_entry with_weights(
    fezz::function_entry entry, const std::vector<std::pair<std::string, std::uint32_t>>& weights) {
  for (const auto& named : weights) {
    if (std::none_of(entry.versions.begin(), entry.versions.end(),
                     [&](const auto& v) { return v.name == named.first; })) {
      throw failure{fmt::format("'{}' has no version '{}' (it has: {})", entry.id(), named.first,
                                describe_versions(entry))};
    }
  }
  for (auto& v : entry.versions) {
    const auto it = std::find_if(weights.begin(), weights.end(),
                                 [&](const auto& named) { return named.first == v.name; });
    v.weight = it == weights.end() ? 0 : it->second;
  }
  return entry;
}

// `entry` without version `name`.
inline fezz::function_entry without_version(fezz::function_entry entry, const std::string& name) {
  const auto before = entry.versions.size();
  std::erase_if(entry.versions, [&](const auto& v) { return v.name == name; });
  if (entry.versions.size() == before) {
    throw failure{fmt::format("'{}' has no version '{}' (it has: {})", entry.id(), name,
                              describe_versions(entry))};
  }
  if (entry.versions.empty()) {
    throw failure{
        fmt::format("'{}' is the only version of '{}': remove the function with "
                    "fezzctl rm {}",
                    name, entry.id(), entry.id())};
  }
  return entry;
}

// Applies `edit` (optional<entry> as it is -> entry to write) to the entry of `id`
// until the write finds the entry as it was read. Returns what was written.
template <class Edit>
fezz::function_entry edit_entry(fezz::function_store& store, const std::string& id, Edit edit) {
  for (int attempt = 0; attempt < 10; ++attempt) {
    const auto now = store.get(id);
    auto next = edit(now);
    const bool written = now ? store.compare_and_swap(next, now->revision) : store.create(next);
    if (written) {
      return store.get(id).value_or(next);
    }
  }
  throw failure{fmt::format("'{}' kept changing while this edit was written: try again", id)};
}

// What deploy publishes: the module's functions, and its bytes' name.
struct module_file {
  std::string path;  // absolute
  std::string bytes;
  std::string sha256;
  std::vector<fezz::owned_manifest> functions;
};

// Reads a module the way a node will: its bytes hashed, the library opened (which checks
// how it was built against how this fezzctl was) and its functions listed.
inline module_file read_module(const std::string& file) {
  module_file out;
  out.path = std::filesystem::absolute(file).lexically_normal().string();
  out.bytes = read_all(out.path);
  out.sha256 = fezz::detail::sha256::of(out.bytes);
  try {
    out.functions = fezz::module_library::open(out.path)->manifests();
  } catch (const fezz::module_error& e) {
    throw failure{e.what()};
  }
  return out;
}

}  // namespace fezzctl
