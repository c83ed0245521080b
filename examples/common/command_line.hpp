#pragma once

// The command line of the example programs: `--flag value` or `--flag=value`,
// every flag also read from the environment as FEZZ_<FLAG> (dashes as
// underscores; the command line wins), switches that take no value, and
// positional words. A bad command line prints the usage and exits 2.

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace examples {

class command_line {
 public:
  // `flags` take a value; `switches` do not. --help and -h print the usage and exit 0.
  command_line(std::string_view program, std::string_view usage, int argc, char** argv,
               std::vector<std::string_view> flags, std::vector<std::string_view> switches = {})
      : program_(program), usage_(usage) {
    for (const std::string_view flag : flags) {
      if (const char* value = std::getenv(environment_name(flag).c_str());
          value != nullptr && *value != '\0') {
        values_[std::string(flag)] = value;
      }
    }
    const auto known = [](const auto& names, std::string_view name) {
      return std::find(names.begin(), names.end(), name) != names.end();
    };
    for (int i = 1; i < argc; ++i) {
      std::string_view arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        std::cout << usage_;
        std::exit(0);
      }
      if (!arg.starts_with("--")) {
        positional_.emplace_back(arg);
        continue;
      }
      arg.remove_prefix(2);
      const auto eq = arg.find('=');
      const std::string_view name = arg.substr(0, eq);
      if (known(switches, name) && eq == std::string_view::npos) {
        switches_.emplace_back(name);
      } else if (!known(flags, name)) {
        fail(fmt::format("unknown option --{}", name));
      } else if (eq != std::string_view::npos) {
        values_[std::string(name)] = arg.substr(eq + 1);
      } else if (i + 1 < argc) {
        values_[std::string(name)] = argv[++i];
      } else {
        fail(fmt::format("--{} needs a value", name));
      }
    }
  }

  // The flag's value, or `fallback` if neither the command line nor the environment gave one.
  std::string text(std::string_view flag, std::string_view fallback = {}) const {
    const auto it = values_.find(std::string(flag));
    return it == values_.end() ? std::string(fallback) : it->second;
  }
  bool has(std::string_view flag) const { return values_.contains(std::string(flag)); }
  bool is_set(std::string_view name) const {
    return std::find(switches_.begin(), switches_.end(), name) != switches_.end();
  }
  const std::vector<std::string>& positional() const { return positional_; }

  // The flag's value as a number from `min` to `max`, or `fallback` if it has none.
  template <class T>
  T number(std::string_view flag, T fallback, T min, T max) const {
    if (!has(flag)) {
      return fallback;
    }
    const std::string value = text(flag);
    T parsed{};
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
    if (ec != std::errc{} || end != value.data() + value.size() || parsed < min || parsed > max) {
      fail(fmt::format("--{}: '{}' is not a number from {} to {}", flag, value, min, max));
    }
    return parsed;
  }

  [[noreturn]] void fail(std::string_view message) const {
    std::cerr << program_ << ": " << message << "\n\n" << usage_;
    std::exit(2);
  }

  static std::string environment_name(std::string_view flag) {
    std::string name = "FEZZ_";
    for (const char c : flag) {
      name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return name;
  }

 private:
  std::string program_;
  std::string usage_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> switches_;
  std::vector<std::string> positional_;
};

}  // namespace examples
