#include <fezz/detail/sha256.hpp>
#include <fezz/host/module_cache.hpp>

#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using fezz::detail::sha256;

// A folder of its own in the temporary folder, removed with everything in it.
struct scratch_folder {
  fs::path path;
  scratch_folder() {
    static std::atomic<int> next{0};
    path = fs::temp_directory_path() /
           ("fezz-module-cache-test-" + std::to_string(::getpid()) + "-" + std::to_string(next++));
    fs::remove_all(path);
    fs::create_directories(path / "source");
  }
  scratch_folder(const scratch_folder&) = delete;
  scratch_folder& operator=(const scratch_folder&) = delete;
  ~scratch_folder() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  fs::path cache() const { return path / "cache"; }
};

// Bytes that are not a shared library: dlopen refuses them.
std::string bytes_of_size(std::size_t size, char seed = 'a') {
  std::string bytes;
  bytes.reserve(size);
  for (std::size_t i = 0; i < size; ++i) {
    bytes += static_cast<char>(seed + static_cast<char>(i % 23));
  }
  return bytes;
}

void write_file(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.flush());
}

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The names in `folder`, or none if it does not exist.
std::vector<std::string> names_in(const fs::path& folder) {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(folder, error)) {
    names.push_back(entry.path().filename().string());
  }
  return names;
}

// The message of the module_error that opening throws, or "(opened)". Called from
// several threads at once too, so it asserts nothing itself.
std::string refusal(fezz::host::module_cache& cache, const std::string& digest,
                    const fs::path& source) {
  try {
    cache.open(digest, source);
  } catch (const fezz::module_error& e) {
    return e.what();
  }
  return "(opened)";
}

}  // namespace

TEST_CASE("module_cache refuses a module over the limit before reading it", "[module_cache]") {
  const scratch_folder folder;
  fezz::host::module_cache cache(folder.cache(), 1000);
  const auto source = folder.path / "source" / "big.so";
  const std::string bytes = bytes_of_size(2000);
  write_file(source, bytes);
  const auto digest = sha256::of(bytes);  // the right digest: only the size refuses it

  CHECK_THAT(refusal(cache, digest, source),
             Contains("is 2000 bytes, over the limit of 1000 bytes") &&
                 Contains("config::max_module_bytes") && Contains(source.string()));
  CHECK(names_in(folder.cache()).empty());
}

TEST_CASE("module_cache takes a module of exactly the limit", "[module_cache]") {
  const scratch_folder folder;
  fezz::host::module_cache cache(folder.cache(), 1000);
  const auto source = folder.path / "source" / "exact.so";
  const std::string bytes = bytes_of_size(1000);
  write_file(source, bytes);
  const auto digest = sha256::of(bytes);

  // Past the size and SHA-256 checks: copied to the cache, then refused by dlopen.
  CHECK_THAT(refusal(cache, digest, source),
             Contains("cannot open module " + (folder.cache() / (digest + ".so")).string()));
  CHECK(read_file(folder.cache() / (digest + ".so")) == bytes);
  CHECK(names_in(folder.cache()) == std::vector<std::string>{digest + ".so"});
}

TEST_CASE("module_cache bounds the read itself, not only the size it was told", "[module_cache]") {
  // /proc files report a size of 0 and hold more: the size check passes, the read must not.
  const fs::path maps = "/proc/self/maps";
  std::error_code error;
  if (fs::file_size(maps, error) != 0 || error || read_file(maps).size() <= 100) {
    WARN("no /proc/self/maps of size 0 here; nothing to check");
    return;
  }
  const scratch_folder folder;
  fezz::host::module_cache cache(folder.cache(), 100);
  CHECK_THAT(refusal(cache, sha256::of(""), maps),
             Contains("grew past the limit of 100 bytes") && Contains("config::max_module_bytes"));
  CHECK(names_in(folder.cache()).empty());
}

TEST_CASE("module_cache never keeps bytes whose SHA-256 is not the one named", "[module_cache]") {
  const scratch_folder folder;
  fezz::host::module_cache cache(folder.cache(), 256 * 1024);
  const auto source = folder.path / "source" / "forged.so";
  // Several 64 KiB chunks, so that every one of them is hashed and the last is short.
  const std::string bytes = bytes_of_size(200'000);
  write_file(source, bytes);
  const auto named = sha256::of("other bytes");

  CHECK_THAT(refusal(cache, named, source),
             Contains("has SHA-256 " + sha256::of(bytes) + ", not the " + named));
  CHECK_FALSE(fs::exists(folder.cache() / (named + ".so")));
  CHECK(names_in(folder.cache()).empty());  // no part-written file left either
}

TEST_CASE("module_cache opens from the cache a file whose bytes match", "[module_cache]") {
  const scratch_folder folder;
  fezz::host::module_cache cache(folder.cache(), 256 * 1024);
  const std::string bytes = bytes_of_size(200'000, 'k');
  const auto digest = sha256::of(bytes);
  const auto cached = folder.cache() / (digest + ".so");
  fs::create_directories(folder.cache());

  SECTION("matching bytes in the cache: the source is not read") {
    write_file(cached, bytes);
    CHECK_THAT(refusal(cache, digest, folder.path / "source" / "absent.so"),
               Contains("cannot open module " + cached.string()));
  }
  SECTION("other bytes in the cache are replaced by the source's") {
    write_file(cached, bytes_of_size(200'000, 'x'));
    const auto source = folder.path / "source" / "good.so";
    write_file(source, bytes);
    CHECK_THAT(refusal(cache, digest, source), Contains("cannot open module " + cached.string()));
    CHECK(read_file(cached) == bytes);
  }
  SECTION("a cached file over the limit is not used") {
    write_file(cached, bytes);
    fezz::host::module_cache smaller(folder.cache(), 1000);
    CHECK_THAT(refusal(smaller, digest, folder.path / "source" / "absent.so"),
               Contains("cannot read module"));
  }
}

TEST_CASE("module_cache says when the source cannot be read", "[module_cache]") {
  const scratch_folder folder;
  fezz::host::module_cache cache(folder.cache(), 1000);
  const auto source = folder.path / "source" / "absent.so";
  CHECK_THAT(refusal(cache, sha256::of(""), source),
             Contains("cannot read module " + source.string()));
}

TEST_CASE("module_cache takes one module at a time, from every thread", "[module_cache]") {
  const scratch_folder folder;
  fezz::host::module_cache cache(folder.cache(), 256 * 1024);
  const auto source = folder.path / "source" / "same.so";
  const std::string bytes = bytes_of_size(200'000);
  write_file(source, bytes);
  const auto digest = sha256::of(bytes);

  // Each caller checks and copies in turn; two at once would write the same file
  // beside the cache's name, and one of them would fail to rename it.
  std::vector<std::string> messages(8);
  {
    std::vector<std::jthread> threads;
    for (auto& message : messages) {
      threads.emplace_back([&] { message = refusal(cache, digest, source); });
    }
  }
  for (const auto& message : messages) {
    CHECK_THAT(message, Contains("cannot open module"));
  }
  CHECK(names_in(folder.cache()) == std::vector<std::string>{digest + ".so"});
  CHECK(read_file(folder.cache() / (digest + ".so")) == bytes);
}

TEST_CASE("module_cache does not hold one module's cold start behind another's", "[module_cache]") {
  const scratch_folder folder;
  fezz::host::module_cache cache(folder.cache(), 64 * 1024 * 1024);
  const auto big = folder.path / "source" / "big.so";
  const std::string big_bytes = bytes_of_size(16 * 1024 * 1024);
  write_file(big, big_bytes);
  const auto big_digest = sha256::of(big_bytes);
  const auto small = folder.path / "source" / "small.so";
  const std::string small_bytes = bytes_of_size(1000, 'k');
  write_file(small, small_bytes);

  std::atomic<bool> big_done{false};
  std::jthread big_open([&] {
    refusal(cache, big_digest, big);
    big_done = true;
  });
  // The big module is being copied once the file beside its cache name exists.
  const auto part = [&] {
    for (const auto& name : names_in(folder.cache())) {
      if (name.starts_with(big_digest + ".so.part")) {
        return true;
      }
    }
    return false;
  };
  while (!part() && !big_done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE_FALSE(big_done);
  CHECK_THAT(refusal(cache, sha256::of(small_bytes), small), Contains("cannot open module"));
  // Still there: the small one was opened while the big one was being copied, not after.
  CHECK(part());
}

TEST_CASE("module_cache takes a module without a path from the store's bytes", "[module_cache]") {
  const scratch_folder folder;
  fezz::host::module_cache cache(folder.cache(), 256 * 1024);
  const std::string bytes = bytes_of_size(200'000, 'f');
  const auto digest = sha256::of(bytes);
  std::size_t asked_limit = 0;
  const auto from_store = [&](std::size_t max_bytes) {
    asked_limit = max_bytes;
    return bytes;
  };

  SECTION("matching bytes are kept in the cache, then opened") {
    try {
      cache.open(digest, {}, from_store);
      FAIL("opened bytes that are not a library");
    } catch (const fezz::module_error& e) {
      CHECK_THAT(e.what(), Contains("cannot open module"));
    }
    CHECK(asked_limit == 256 * 1024);  // the store is told the limit
    CHECK(read_file(folder.cache() / (digest + ".so")) == bytes);
  }
  SECTION("bytes that do not match their SHA-256 are not kept") {
    const auto named = sha256::of("other bytes");
    try {
      cache.open(named, {}, from_store);
      FAIL("kept forged bytes");
    } catch (const fezz::module_error& e) {
      CHECK_THAT(e.what(), Contains("from the store") && Contains("not the " + named));
    }
    CHECK(names_in(folder.cache()).empty());
  }
  SECTION("a store that fails says why") {
    try {
      cache.open(digest, {}, [](std::size_t) -> std::string { throw std::runtime_error("down"); });
      FAIL("opened without bytes");
    } catch (const fezz::module_error& e) {
      CHECK_THAT(e.what(), Contains("cannot fetch module " + digest + " from the store: down"));
    }
  }
}
