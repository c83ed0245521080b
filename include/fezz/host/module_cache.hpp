#pragma once

// module_cache: a host's modules, by the SHA-256 of their bytes. A module is copied
// into the cache folder only after its bytes are checked, and opened from there, so
// the bytes opened are the bytes checked; each is open once, for as long as any
// instance of it lives.

#include <fezz/detail/sha256.hpp>
#include <fezz/module.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>

namespace fezz::host {

class module_cache {
 public:
  explicit module_cache(std::filesystem::path folder) : folder_(std::move(folder)) {}

  // The default folder: fezz-modules-<uid> in the system's temporary folder.
  static std::filesystem::path default_folder() {
    return std::filesystem::temp_directory_path() / ("fezz-modules-" + std::to_string(::getuid()));
  }

  const std::filesystem::path& folder() const noexcept { return folder_; }

  // The open library whose bytes have this SHA-256 (64 lowercase hex digits), taken
  // from `source` if the cache does not hold it yet. Throws module_error when the
  // bytes do not match (the file is then never opened), or when opening fails.
  std::shared_ptr<module_library> open(const std::string& sha256,
                                       const std::filesystem::path& source) {
    std::lock_guard lock(mutex_);
    if (auto library = open_[sha256].lock()) {
      return library;
    }
    const auto cached = folder_ / (sha256 + ".so");
    if (!matches(cached, sha256)) {
      const std::string bytes = read(source);
      if (const auto actual = detail::sha256::of(bytes); actual != sha256) {
        throw module_error("module " + source.string() + " has SHA-256 " + actual + ", not the " +
                           sha256 + " its entry names: not opened");
      }
      write(cached, bytes);
    }
    auto library = module_library::open(cached);
    open_[sha256] = library;
    return library;
  }

 private:
  static std::string read(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      throw module_error("cannot read module " + file.string());
    }
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  static bool matches(const std::filesystem::path& file, const std::string& sha256) {
    std::error_code ignored;
    return std::filesystem::exists(file, ignored) && detail::sha256::of(read(file)) == sha256;
  }

  // Written beside, then renamed: another process never opens a part-written file.
  void write(const std::filesystem::path& file, const std::string& bytes) const {
    std::error_code error;
    std::filesystem::create_directories(folder_, error);
    const auto part = file.string() + ".part-" + std::to_string(::getpid());
    {
      std::ofstream out(part, std::ios::binary | std::ios::trunc);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      if (!out.flush()) {
        throw module_error("cannot write module cache " + part);
      }
    }
    std::filesystem::rename(part, file, error);
    if (error) {
      throw module_error("cannot write module cache " + file.string() + ": " + error.message());
    }
  }

  std::filesystem::path folder_;
  std::mutex mutex_;
  std::map<std::string, std::weak_ptr<module_library>> open_;
};

}  // namespace fezz::host
