#pragma once

// Function modules: ordinary FEZZ_FUNCTION code built as a shared library with
// CMake's fezz_add_module(), and loaded by a host at run time.
//
// The module side is one exported entry point, which fezz_add_module() adds
// (FEZZ_MODULE_ENTRY): how the module was built, and its functions. The host side
// opens a module, refuses one built differently from itself, and makes instances
// whose code stays mapped while any of them lives; the last one gone, the library
// is closed and leaves the process.

#include <fezz/function.hpp>
#include <fezz/version.hpp>

#include <boost/version.hpp>

#include <dlfcn.h>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// Raised whenever a change to Fezz's types or to how a module is opened would make
// a module built before it misbehave in a host built after it, or the reverse.
// (Settable from the command line only so that a test can build a mismatched module.)
#ifndef FEZZ_MODULE_ABI_REVISION
#define FEZZ_MODULE_ABI_REVISION 1
#endif

#define FEZZ_DETAIL_TEXT(x) #x
#define FEZZ_DETAIL_TEXT_OF(x) FEZZ_DETAIL_TEXT(x)
#if defined(__clang__)
#define FEZZ_DETAIL_COMPILER                                               \
  "clang++ " FEZZ_DETAIL_TEXT_OF(__clang_major__) "." FEZZ_DETAIL_TEXT_OF( \
      __clang_minor__) "." FEZZ_DETAIL_TEXT_OF(__clang_patchlevel__)
#elif defined(__GNUC__)
#define FEZZ_DETAIL_COMPILER "g++ " __VERSION__
#else
#define FEZZ_DETAIL_COMPILER "unknown compiler"
#endif
#if defined(_LIBCPP_VERSION)
#define FEZZ_DETAIL_STANDARD_LIBRARY "libc++ " FEZZ_DETAIL_TEXT_OF(_LIBCPP_VERSION)
#elif defined(__GLIBCXX__)
#define FEZZ_DETAIL_STANDARD_LIBRARY "libstdc++ " FEZZ_DETAIL_TEXT_OF(__GLIBCXX__)
#else
#define FEZZ_DETAIL_STANDARD_LIBRARY "unknown standard library"
#endif

namespace fezz {

// What this translation unit is built against. A host opens a module only if the
// module's text is the same as its own.
inline constexpr std::string_view module_abi = "fezz module ABI " FEZZ_DETAIL_TEXT_OF(
    FEZZ_MODULE_ABI_REVISION) "; " FEZZ_DETAIL_COMPILER "; " FEZZ_DETAIL_STANDARD_LIBRARY
                              "; Boost " BOOST_LIB_VERSION;

// What a module's entry point returns. Plain data first, so that a host can read
// `built_with` from a module of any build before it calls anything else.
struct module_entry {
  const char* built_with;
  std::size_t built_with_size;
  std::vector<function_registration> (*functions)();
};

// A module that cannot be used: not a library, no entry point, built differently,
// no such function. The message says which.
class module_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

inline constexpr const char* module_entry_name = "fezz_module_entry_v1";

}  // namespace detail

// One open module library. Shared by the instances made from it: the library is
// closed when the last owner goes.
class module_library : public std::enable_shared_from_this<module_library> {
 public:
  // Opens the library at `file` and checks how it was built. Throws module_error.
  static std::shared_ptr<module_library> open(const std::filesystem::path& file) {
    void* handle = ::dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = ::dlerror();
      throw module_error("cannot open module " + file.string() + ": " + (why ? why : "unknown"));
    }
    auto library = std::shared_ptr<module_library>(new module_library(handle, file));
    using entry_point = const module_entry* (*)();
    const auto entry = reinterpret_cast<entry_point>(::dlsym(handle, detail::module_entry_name));
    if (entry == nullptr) {
      throw module_error("module " + file.string() + " has no entry point " +
                         detail::module_entry_name + ": build it with fezz_add_module()");
    }
    library->entry_ = entry();
    const std::string_view built_with(library->entry_->built_with,
                                      library->entry_->built_with_size);
    if (built_with != module_abi) {
      throw module_error("module " + file.string() + " was built with \"" +
                         std::string(built_with) + "\", this host with \"" +
                         std::string(module_abi) + "\": rebuild it against this host's Fezz");
    }
    return library;
  }

  module_library(const module_library&) = delete;
  module_library& operator=(const module_library&) = delete;
  ~module_library() { ::dlclose(handle_); }

  const std::filesystem::path& file() const noexcept { return file_; }

  // The manifests of the module's functions, in registration order (copied: the
  // originals live in the module's memory).
  std::vector<owned_manifest> manifests() const {
    std::vector<owned_manifest> out;
    for (const auto& r : entry_->functions()) {
      out.emplace_back(r.static_manifest);
    }
    return out;
  }

  // The ids of the module's functions, in registration order.
  std::vector<std::string> function_ids() const {
    std::vector<std::string> ids;
    for (auto& m : manifests()) {
      ids.push_back(std::move(m.id));
    }
    return ids;
  }

  // A new instance of the module's function `id`, which keeps this library open.
  std::unique_ptr<detail::function_instance> make(std::string_view id) {
    std::unique_ptr<detail::function_instance> inner;
    {
      // The registrations' code is the module's: destroyed here, while it is mapped.
      const auto registrations = entry_->functions();
      for (const auto& r : registrations) {
        if (r.static_manifest.id == id) {
          inner = r.make();
          break;
        }
      }
    }
    if (!inner) {
      std::string known;
      for (const auto& other : function_ids()) {
        known += (known.empty() ? "" : ", ") + other;
      }
      throw module_error("module " + file_.string() + " has no function '" + std::string(id) +
                         "' (it has: " + known + ")");
    }
    return std::make_unique<instance>(shared_from_this(), std::move(inner));
  }

 private:
  module_library(void* handle, std::filesystem::path file)
      : handle_(handle), file_(std::move(file)) {}

  // A module's instance, holding its library open for as long as it lives.
  class instance final : public detail::function_instance {
   public:
    instance(std::shared_ptr<module_library> library,
             std::unique_ptr<detail::function_instance> inner)
        : library_(std::move(library)), inner_(std::move(inner)) {}

    detail::fetch_outcome fetch(request& req, context& ctx) override {
      return inner_->fetch(req, ctx);
    }
    bool fetch_is_coroutine() const noexcept override { return inner_->fetch_is_coroutine(); }
    bool has_on_load() const noexcept override { return inner_->has_on_load(); }
    bool has_on_unload() const noexcept override { return inner_->has_on_unload(); }
    boost::asio::awaitable<void> on_load(context& ctx) override { return inner_->on_load(ctx); }
    boost::asio::awaitable<void> on_unload(context& ctx) override { return inner_->on_unload(ctx); }

   private:
    std::shared_ptr<module_library> library_;  // declared first: destroyed last
    std::unique_ptr<detail::function_instance> inner_;
  };

  void* handle_;
  std::filesystem::path file_;
  const module_entry* entry_ = nullptr;
};

}  // namespace fezz

// The module's entry point; fezz_add_module() adds a source file with this line.
// Exported with C linkage under a name that carries the entry's layout version.
#define FEZZ_MODULE_ENTRY()                                                     \
  extern "C" __attribute__((visibility("default"))) const ::fezz::module_entry* \
  fezz_module_entry_v1() {                                                      \
    static const ::fezz::module_entry entry{                                    \
        ::fezz::module_abi.data(), ::fezz::module_abi.size(),                   \
        [] { return ::fezz::detail::registration_list::instance().all(); }};    \
    return &entry;                                                              \
  }
