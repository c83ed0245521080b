// fezzctl: reads and changes a Fezz control plane in etcd, in the format every node and
// any etcd client share (docs/control-plane.md). Exit status: 0 success, 1 failure with a
// one-line reason on stderr, 2 bad usage.

#include "../common/command_line.hpp"
#include "../common/store_flags.hpp"

#include <fezz/function_store.hpp>
#include <fezz/store_format.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/sinks/null_sink.h>
#include <nlohmann/json.hpp>

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

options (each also read from the environment as FEZZ_<NAME>, e.g. FEZZ_STORE):
  --store URL          etcd://host:port[,host:port...] or etcds://... (default etcd://127.0.0.1:2379)
  --store-prefix P     the store's keys start with it (default /fezz/)
  --etcd-ca FILE       etcds: the CA that signed etcd's certificate
  --etcd-cert FILE     etcds: a client certificate, and --etcd-key FILE its key
  --etcd-user USER     etcd authentication; the password from FEZZ_ETCD_PASSWORD
  --if-revision N      with put: compare-and-swap on the entry's revision
  --help               print this and exit

exit status: 0 success, 1 failure (one line on stderr says why), 2 bad usage
)";

// A failure the user should read: one line, exit 1.
struct failure {
  std::string reason;
};

nlohmann::json entry_json(const fezz::function_entry& entry) {
  auto j = nlohmann::json::parse(fezz::to_json(entry));
  j["revision"] = entry.revision;
  return j;
}

std::string read_all(const std::string& file) {
  if (file == "-") {
    return {std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw failure{"cannot read " + file};
  }
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
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
  auto parsed = fezz::parse_function_entry(read_all(file));
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
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> flags = {"if-revision"};
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
