#pragma once

// module_cache: a host's modules, by the SHA-256 of their bytes. A module is copied
// into the cache folder only after its bytes are checked, and opened from there, so
// the bytes opened are the bytes checked; each is open once, for as long as any
// instance of it lives, and each is read, checked and opened under a lock of its
// own, so that one module's cold start does not wait for another's. A module
// larger than the limit (config::max_module_bytes) is refused before it is read,
// and no read goes past the limit.

#include <fezz/detail/sha256.hpp>
#include <fezz/module.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <istream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <streambuf>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace fezz::host {

class module_cache {
 public:
  // Modules are kept in `folder`; one larger than `max_bytes` is refused.
  module_cache(std::filesystem::path folder, std::size_t max_bytes)
      : folder_(std::move(folder)), max_bytes_(max_bytes) {}

  // The default folder: fezz-modules-<uid> in the system's temporary folder.
  static std::filesystem::path default_folder() {
    return std::filesystem::temp_directory_path() / ("fezz-modules-" + std::to_string(::getuid()));
  }

  const std::filesystem::path& folder() const noexcept { return folder_; }
  std::size_t max_bytes() const noexcept { return max_bytes_; }

  // Where a module's bytes come from when there is no file to read: the control
  // plane's store. Returns them (at most the given number of bytes) or throws.
  using fetcher = std::function<std::string(std::size_t max_bytes)>;

  // The open library whose bytes have this SHA-256 (64 lowercase hex digits), taken
  // from the file `source` (or, if `source` is empty, from `fetch`) if the cache does
  // not hold it yet. Throws module_error when the module is larger than max_bytes()
  // or its bytes do not match (the bytes are then never opened), or when opening or
  // fetching fails.
  std::shared_ptr<module_library> open(const std::string& sha256,
                                       const std::filesystem::path& source,
                                       const fetcher& fetch = {}) {
    std::shared_ptr<entry> module;
    {
      std::lock_guard lock(mutex_);
      auto& found = entries_[sha256];
      if (!found) {
        found = std::make_shared<entry>();
      }
      module = found;
    }
    // The slow part under this module's lock only: a second caller for the same
    // module waits here, then shares the library the first one opened.
    std::lock_guard lock(module->mutex);
    if (auto library = module->library.lock()) {
      return library;
    }
    const auto cached = folder_ / (sha256 + ".so");
    // A file checked before and unchanged since is not hashed again: a cold start
    // then costs a dlopen, not a read of the whole library.
    if (!module->checked || identity_of(cached) != module->checked) {
      module->checked.reset();
      if (!matches(cached, sha256)) {
        if (!source.empty()) {
          check_size(source);
          std::ifstream in(source, std::ios::binary);
          if (!in) {
            throw module_error("cannot read module " + source.string());
          }
          copy_checked(in, source.string(), cached, sha256);
        } else if (fetch) {
          std::string bytes = fetch_bytes(fetch, sha256);
          bytes_reader reader(bytes);  // read in place: a module is not held twice
          std::istream in(&reader);
          copy_checked(in, "module " + sha256 + " from the store", cached, sha256);
        } else {
          throw module_error("module " + sha256 +
                             " has no path and there is no store to fetch it from");
        }
      }
      module->checked = identity_of(cached);
    }
    auto library = module_library::open(cached);
    module->library = library;
    return library;
  }

 private:
  // One module's lock, and its library while any instance lives. Kept once made.
  // Which file a path names, and whether it changed: device, inode, size, last change.
  struct file_identity {
    ::dev_t device;
    ::ino_t inode;
    ::off_t size;
    std::int64_t changed_ns;
    friend bool operator==(const file_identity&, const file_identity&) = default;
  };

  static std::optional<file_identity> identity_of(const std::filesystem::path& file) {
    struct ::stat st {};
    if (::stat(file.c_str(), &st) != 0) {
      return std::nullopt;
    }
    return file_identity{st.st_dev, st.st_ino, st.st_size,
                         std::int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec};
  }

  struct entry {
    std::mutex mutex;
    std::weak_ptr<module_library> library;
    std::optional<file_identity> checked;  // the cached file as it was when last checked
  };

  static constexpr std::size_t chunk_bytes = 64 * 1024;

  // Reads a string's bytes where they are.
  struct bytes_reader : std::streambuf {
    explicit bytes_reader(std::string& bytes) {
      setg(bytes.data(), bytes.data(), bytes.data() + bytes.size());
    }
  };

  // Refuses `file` if it is over the limit, before anything of it is read.
  void check_size(const std::filesystem::path& file) const {
    std::error_code error;
    const auto size = std::filesystem::file_size(file, error);
    if (error) {
      throw module_error("cannot read module " + file.string() + ": " + error.message());
    }
    if (size > max_bytes_) {
      throw module_error("module " + file.string() + " is " + std::to_string(size) +
                         " bytes, over the limit of " + std::to_string(max_bytes_) +
                         " bytes (config::max_module_bytes): not opened");
    }
  }

  module_error grew(const std::filesystem::path& file) const {
    return module_error("module " + file.string() + " grew past the limit of " +
                        std::to_string(max_bytes_) +
                        " bytes (config::max_module_bytes) while it was read: not opened");
  }

  // Feeds `in` to `hash` and to `sink`, a chunk at a time. False, and nothing fed
  // beyond it, if `in` holds more than max_bytes_.
  template <class Sink>
  bool read_chunks(std::istream& in, detail::sha256& hash, Sink&& sink) const {
    std::vector<char> chunk(chunk_bytes);
    std::uintmax_t total = 0;
    while (in) {
      in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      const auto got = static_cast<std::size_t>(in.gcount());
      total += got;
      if (total > max_bytes_) {
        return false;
      }
      const std::string_view bytes(chunk.data(), got);
      hash.update(bytes);
      sink(bytes);
    }
    return true;
  }

  // True if the cache holds `file` with this SHA-256. Anything else (absent, over
  // the limit, unreadable, other bytes) is taken from the source again.
  bool matches(const std::filesystem::path& file, const std::string& sha256) const {
    std::error_code error;
    const auto size = std::filesystem::file_size(file, error);
    if (error || size > max_bytes_) {
      return false;
    }
    std::ifstream in(file, std::ios::binary);
    detail::sha256 hash;
    return in && read_chunks(in, hash, [](std::string_view) {}) && !in.bad() &&
           hash.hex() == sha256;
  }

  // Copies `source` to `cached` if its bytes have this SHA-256: each chunk read is
  // hashed and written to a file beside, which is renamed only once the digest
  // matches, so another process never opens a part-written file and bytes that do
  // not match are never left under the cache's name.
  std::string fetch_bytes(const fetcher& fetch, const std::string& sha256) const {
    try {
      return fetch(max_bytes_);
    } catch (const module_error&) {
      throw;
    } catch (const std::exception& e) {
      throw module_error("cannot fetch module " + sha256 + " from the store: " + e.what());
    }
  }

  // `source` names where `in` reads from, in messages.
  void copy_checked(std::istream& in, const std::string& source,
                    const std::filesystem::path& cached, const std::string& sha256) const {
    std::error_code error;
    std::filesystem::create_directories(folder_, error);
    const std::filesystem::path part = cached.string() + ".part-" + std::to_string(::getpid());
    struct remove_unless_renamed {
      const std::filesystem::path& file;
      bool renamed = false;
      ~remove_unless_renamed() {
        if (!renamed) {
          std::error_code ignored;
          std::filesystem::remove(file, ignored);
        }
      }
    } cleanup{part};
    detail::sha256 hash;
    {
      std::ofstream out(part, std::ios::binary | std::ios::trunc);
      if (!out) {
        throw module_error("cannot write module cache " + part.string());
      }
      if (!read_chunks(in, hash, [&out](std::string_view bytes) {
            out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
          })) {
        throw grew(source);
      }
      if (in.bad()) {
        throw module_error("cannot read module " + source);
      }
      out.close();
      if (!out) {
        throw module_error("cannot write module cache " + part.string());
      }
    }
    if (const auto actual = hash.hex(); actual != sha256) {
      throw module_error("module " + source + " has SHA-256 " + actual + ", not the " + sha256 +
                         " its entry names: not opened");
    }
    std::filesystem::rename(part, cached, error);
    if (error) {
      throw module_error("cannot write module cache " + cached.string() + ": " + error.message());
    }
    cleanup.renamed = true;
  }

  std::filesystem::path folder_;
  std::size_t max_bytes_;
  std::mutex mutex_;  // guards entries_ only
  std::map<std::string, std::shared_ptr<entry>> entries_;
};

}  // namespace fezz::host
