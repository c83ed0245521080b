// fezzctl: reads and changes a Fezz control plane in etcd, in the format every node and
// any etcd client share (docs/control-plane.md). Exit status: 0 success, 1 failure with a
// one-line reason on stderr, 2 bad usage.

#include "../common/command_line.hpp"
#include "../common/store_flags.hpp"
#include "versions.hpp"

#include <fezz/function_store.hpp>
#include <fezz/store_format.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/sinks/null_sink.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <unistd.h>

namespace {

constexpr std::string_view usage = R"(usage: fezzctl [options] COMMAND [ARGUMENTS]

Reads and changes a Fezz control plane in etcd.

commands:
  list [--json]        every function entry: id, method, path, nodes, revision
                       (--json: a JSON array of the entries, each with its revision)
  get ID               one entry, as JSON with its revision
  put FILE|-           writes the entry in FILE (or standard input), validated first;
                       with --if-revision N only if its revision is still N (0: only if new)
  rm ID                removes an entry
  nodes                the live nodes: name, state, address, started, version
  watch                one JSON line per change, until interrupted
  deploy MODULE.so --version V [--weight PERCENT] [--id ID] [--nodes A,B]
                       makes V a live version of each function in the module (or of ID
                       alone): the module's bytes go to etcd, where every node fetches them;
                       with --weight, V takes PERCENT % of the requests and the other
                       versions share the rest; without it, V takes them all, alone
  split ID V=W [V=W ...]
                       sets the versions' weights at once (a version not named: 0)
  undeploy ID --version V
                       removes version V; its instances finish their calls and unload

options (each also read from the environment as FEZZ_<NAME>, e.g. FEZZ_STORE):
  --store URL          etcd://host:port[,host:port...] or etcds://... (default etcd://127.0.0.1:2379)
  --store-prefix P     the store's keys start with it (default /fezz/)
  --etcd-ca FILE       etcds: the CA that signed etcd's certificate
  --etcd-cert FILE     etcds: a client certificate, and --etcd-key FILE its key
  --etcd-user USER     etcd authentication; the password from FEZZ_ETCD_PASSWORD
  --if-revision N      with put: compare-and-swap on the entry's revision
  --version V          with deploy and undeploy: the version's name (A-Z a-z 0-9 . _ -)
  --weight PERCENT     with deploy: 0 to 100
  --id ID              with deploy: only this function of the module
  --nodes A,B          with deploy: the nodes that serve the function (default: all for a
                       new entry; an existing entry keeps its nodes unless given)
  --help               print this and exit

exit status: 0 success, 1 failure (one line on stderr says why), 2 bad usage
)";

using fezzctl::failure;

nlohmann::json entry_json(const fezz::function_entry& entry) {
  auto j = nlohmann::json::parse(fezz::to_json(entry));
  j["revision"] = entry.revision;
  return j;
}

void list(fezz::function_store& store, bool as_json) {
  const auto entries = store.list();
  if (as_json) {
    auto array = nlohmann::json::array();
    for (const auto& e : entries) {
      array.push_back(entry_json(e));
    }
    std::cout << array.dump(2) << "\n";
    return;
  }
  std::cout << fmt::format("{:<24} {:<7} {:<32} {:<16} {}\n", "ID", "METHOD", "PATH", "NODES",
                           "REVISION");
  for (const auto& e : entries) {
    const std::string nodes = e.nodes.empty() ? "*" : fmt::format("{}", fmt::join(e.nodes, ","));
    std::cout << fmt::format("{:<24} {:<7} {:<32} {:<16} {}\n", e.id(), e.manifest.method,
                             e.manifest.path, nodes, e.revision);
  }
}

void put(fezz::function_store& store, const std::string& file,
         std::optional<std::int64_t> if_revision) {
  auto parsed = fezz::parse_function_entry(fezzctl::read_all(file));
  if (!parsed) {
    throw failure{"invalid entry: " + parsed.error()};
  }
  auto entry = std::move(parsed.value());
  const std::string id = entry.id();
  if (!if_revision) {
    store.register_function(std::move(entry));
  } else if (*if_revision == 0) {
    if (!store.create(std::move(entry))) {
      throw failure{"revision conflict: '" + id + "' exists already"};
    }
  } else if (!store.compare_and_swap(std::move(entry), *if_revision)) {
    const auto now = store.get(id);
    throw failure{now ? fmt::format("revision conflict: '{}' is at revision {}, not {}", id,
                                    now->revision, *if_revision)
                      : fmt::format("revision conflict: '{}' does not exist", id)};
  }
  const auto written = store.get(id);
  std::cout << fmt::format("{} at revision {}\n", id, written ? written->revision : 0);
}

void watch(fezz::function_store& store) {
  static volatile std::sig_atomic_t stop = 0;
  std::signal(SIGINT, [](int) { stop = 1; });
  std::signal(SIGTERM, [](int) { stop = 1; });
  auto subscription = store.watch([](const fezz::store_event& event) {
    const nlohmann::json line = {{"type", fezz::to_string(event.type)},
                                 {"id", event.entry.id()},
                                 {"revision", event.entry.revision},
                                 {"entry", entry_json(event.entry)}};
    std::cout << line.dump() << std::endl;  // a line at a time, for pipes
  });
  while (stop == 0) {
    ::pause();  // until a signal
  }
}

void print_versions(const fezz::function_entry& entry) {
  std::cout << fmt::format("{}: {} at revision {}\n", entry.id(), fezzctl::describe_versions(entry),
                           entry.revision);
}

void deploy(fezz::function_store& store, const examples::command_line& line,
            const std::string& file) {
  const auto module = fezzctl::read_module(file);
  // The bytes go to etcd first, so every node that sees the entry can fetch them.
  store.put_module(module.sha256, module.bytes);
  const fezz::function_version added{line.text("version", ""), 100,
                                     fezz::module_source{module.sha256, ""}};
  std::optional<std::uint32_t> percent;
  if (line.has("weight")) {
    percent = line.number<std::uint32_t>("weight", 100, 0, 100);
  }
  const std::string only = line.text("id", "");
  std::vector<std::string> nodes;
  const std::string node_list = line.text("nodes", "");
  for (std::string_view rest = node_list; !rest.empty();) {
    const auto comma = rest.find(',');
    nodes.emplace_back(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  }
  bool found = false;
  for (const auto& manifest : module.functions) {
    if (!only.empty() && manifest.id != only) {
      continue;
    }
    found = true;
    print_versions(fezzctl::edit_entry(store, manifest.id, [&](const auto& now) {
      auto entry = now.value_or(fezz::function_entry(manifest));
      if (!now || !nodes.empty()) {
        entry.nodes = nodes;
      }
      return fezzctl::with_version(std::move(entry), added, now ? percent : std::nullopt);
    }));
  }
  if (!found) {
    std::string ids;
    for (const auto& m : module.functions) {
      ids += (ids.empty() ? "" : ", ") + m.id;
    }
    throw failure{fmt::format("{} has no function '{}' (it has: {})", module.path, only, ids)};
  }
}

void split(fezz::function_store& store, const examples::command_line& line) {
  const auto& words = line.positional();
  std::vector<std::pair<std::string, std::uint32_t>> weights;
  for (std::size_t i = 2; i < words.size(); ++i) {
    const auto eq = words[i].find('=');
    std::uint32_t weight = 0;
    const char* end = words[i].data() + words[i].size();
    const auto parsed = eq == std::string::npos
                            ? std::from_chars_result{end, std::errc::invalid_argument}
                            : std::from_chars(words[i].data() + eq + 1, end, weight);
    if (parsed.ec != std::errc{} || parsed.ptr != end || eq + 1 == words[i].size() ||
        weight > 1000000) {
      line.fail(
          fmt::format("'{}' is not VERSION=WEIGHT (a whole number from 0 to 1000000)", words[i]));
    }
    weights.emplace_back(words[i].substr(0, eq), weight);
  }
  print_versions(fezzctl::edit_entry(store, words[1], [&](const auto& now) {
    if (!now) {
      throw failure{"not found: '" + words[1] + "'"};
    }
    return fezzctl::with_weights(*now, weights);
  }));
}

void undeploy(fezz::function_store& store, const std::string& id, const std::string& version) {
  print_versions(fezzctl::edit_entry(store, id, [&](const auto& now) {
    if (!now) {
      throw failure{"not found: '" + id + "'"};
    }
    return fezzctl::without_version(*now, version);
  }));
}

int run(const examples::command_line& line) {
  const auto& words = line.positional();
  if (words.empty()) {
    line.fail("no command");
  }
  const std::string& command = words.front();
  const auto arguments = words.size() - 1;
  const auto expect_arguments = [&](std::size_t n, std::string_view what) {
    if (arguments != n) {
      line.fail(fmt::format("{} takes {}", command, what));
    }
  };
  if (command == "list") {
    expect_arguments(0, "no argument");
  } else if (command == "get" || command == "rm") {
    expect_arguments(1, "an id");
  } else if (command == "put") {
    expect_arguments(1, "a file, or - for standard input");
  } else if (command == "nodes" || command == "watch") {
    expect_arguments(0, "no argument");
  } else if (command == "deploy") {
    expect_arguments(1, "a module file");
  } else if (command == "undeploy") {
    expect_arguments(1, "an id");
  } else if (command == "split") {
    if (arguments < 2) {
      line.fail("split takes an id and one VERSION=WEIGHT or more");
    }
  } else {
    line.fail(fmt::format("unknown command '{}'", command));
  }
  std::optional<std::int64_t> if_revision;
  if (line.has("if-revision")) {
    if (command != "put") {
      line.fail("--if-revision goes with put");
    }
    if_revision = line.number<std::int64_t>("if-revision", 0, 0, INT64_MAX);
  }
  const bool versioned = command == "deploy" || command == "undeploy";
  if (versioned && !fezz::is_valid_version_name(line.text("version", ""))) {
    line.fail("--version V is needed: 1 to 64 of A-Z a-z 0-9 . _ -");
  }
  if (line.is_set("json") && command != "list") {
    line.fail("--json goes with list");
  }
  if (line.text("store", "etcd://127.0.0.1:2379") == "memory") {
    line.fail("fezzctl works on a shared store: --store etcd://... or etcds://...");
  }

  auto quiet =
      std::make_shared<spdlog::logger>("fezzctl", std::make_shared<spdlog::sinks::null_sink_mt>());
  // A command line answers soon: 3 s to reach etcd, not a server's 10.
  const auto store =
      examples::open_store(line, "etcd://127.0.0.1:2379", quiet, std::chrono::seconds(3));
  if (command == "list") {
    list(*store, line.is_set("json"));
  } else if (command == "get") {
    const auto entry = store->get(words[1]);
    if (!entry) {
      throw failure{"not found: '" + words[1] + "'"};
    }
    std::cout << entry_json(*entry).dump(2) << "\n";
  } else if (command == "put") {
    put(*store, words[1], if_revision);
  } else if (command == "rm") {
    if (!store->remove(words[1])) {
      throw failure{"not found: '" + words[1] + "'"};
    }
  } else if (command == "nodes") {
    std::cout << fmt::format("{:<16} {:<9} {:<32} {:<21} {}\n", "NAME", "STATE", "ADDRESS",
                             "STARTED", "VERSION");
    for (const auto& n : store->nodes()) {
      std::cout << fmt::format("{:<16} {:<9} {:<32} {:<21} {}\n", n.name, n.state, n.address,
                               n.started, n.fezz_version);
    }
  } else if (command == "watch") {
    watch(*store);
  } else if (command == "deploy") {
    deploy(*store, line, words[1]);
  } else if (command == "split") {
    split(*store, line);
  } else if (command == "undeploy") {
    undeploy(*store, words[1], line.text("version", ""));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> flags = {"if-revision", "version", "weight", "id", "nodes"};
  flags.insert(flags.end(), examples::store_flags.begin(), examples::store_flags.end());
  const examples::command_line line("fezzctl", usage, argc, argv, flags, {"json"});
  try {
    return run(line);
  } catch (const failure& f) {
    std::cerr << "fezzctl: " << f.reason << "\n";
  } catch (const fezz::store_error& e) {
    std::cerr << "fezzctl: " << e.what() << "\n";
  } catch (const std::exception& e) {  // TLS files that cannot be loaded, and the like
    std::cerr << "fezzctl: " << e.what() << "\n";
  }
  return 1;
}
