#pragma once

// The function model: the `fezz::function` concept, the type-erased instance
// the registry loads, and the FEZZ_FUNCTION registration macro.

#include <fezz/context.hpp>
#include <fezz/manifest.hpp>
#include <fezz/request.hpp>
#include <fezz/response.hpp>

#include <boost/asio/awaitable.hpp>

#include <concepts>
#include <functional>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace fezz {

namespace detail {

template <class T>
struct is_awaitable_of_response : std::false_type {};
template <class Executor>
struct is_awaitable_of_response<boost::asio::awaitable<response, Executor>> : std::true_type {};

template <class T>
struct is_awaitable_of_void : std::false_type {};
template <class Executor>
struct is_awaitable_of_void<boost::asio::awaitable<void, Executor>> : std::true_type {};

template <class T>
concept fetch_result = std::convertible_to<T, response> || is_awaitable_of_response<T>::value;

template <class T>
concept hook_result = std::is_void_v<T> || is_awaitable_of_void<T>::value;

}  // namespace detail

// A type the host can serve: `fetch(request, context&)` returning a response
// (or anything convertible, such as fezz::error) or an awaitable of one.
// `on_load(context&)` and `on_unload(context&)` are optional, returning void
// or awaitable<void>. One instance serves concurrent calls: fetch must be safe
// to call from several threads at once.
template <class F>
concept function = std::is_object_v<F> && requires(F& f, request&& req, context& ctx) {
  { f.fetch(std::move(req), ctx) } -> detail::fetch_result;
};

template <class F>
concept has_on_load = requires(F& f, context& ctx) {
  { f.on_load(ctx) } -> detail::hook_result;
};

template <class F>
concept has_on_unload = requires(F& f, context& ctx) {
  { f.on_unload(ctx) } -> detail::hook_result;
};

// A function type that names its own compile-time manifest, as FEZZ_FUNCTION's do.
template <class F>
concept function_with_manifest = function<F> && requires {
  { F::manifest } -> std::convertible_to<const manifest&>;
};

namespace detail {

// What a call produced: a response now, or a coroutine that will produce one.
using fetch_outcome = std::variant<response, boost::asio::awaitable<response>>;

// A loaded instance behind one interface, so the registry holds any function.
class function_instance {
 public:
  virtual ~function_instance() = default;
  virtual fetch_outcome fetch(request& req, context& ctx) = 0;
  // Whether fetch answers with a coroutine: known from the type, before the call.
  virtual bool fetch_is_coroutine() const noexcept = 0;
  virtual bool has_on_load() const noexcept = 0;
  virtual bool has_on_unload() const noexcept = 0;
  virtual boost::asio::awaitable<void> on_load(context& ctx) = 0;
  virtual boost::asio::awaitable<void> on_unload(context& ctx) = 0;
};

template <function F>
class erased_function final : public function_instance {
 public:
  template <class... Args>
  explicit erased_function(Args&&... args) : f_(std::forward<Args>(args)...) {}

  fetch_outcome fetch(request& req, context& ctx) override {
    if constexpr (coroutine) {
      return fetch_outcome{std::in_place_index<1>, f_.fetch(std::move(req), ctx)};
    } else {
      return fetch_outcome{std::in_place_index<0>, response(f_.fetch(std::move(req), ctx))};
    }
  }
  bool fetch_is_coroutine() const noexcept override { return coroutine; }
  bool has_on_load() const noexcept override { return fezz::has_on_load<F>; }
  bool has_on_unload() const noexcept override { return fezz::has_on_unload<F>; }
  boost::asio::awaitable<void> on_load(context& ctx) override {
    if constexpr (fezz::has_on_load<F>) {
      return call_hook([&] { return f_.on_load(ctx); });
    } else {
      return noop();
    }
  }
  boost::asio::awaitable<void> on_unload(context& ctx) override {
    if constexpr (fezz::has_on_unload<F>) {
      return call_hook([&] { return f_.on_unload(ctx); });
    } else {
      return noop();
    }
  }

 private:
  static constexpr bool coroutine = is_awaitable_of_response<decltype(std::declval<F&>().fetch(
      std::declval<request>(), std::declval<context&>()))>::value;

  static boost::asio::awaitable<void> noop() { co_return; }
  template <class Call>
  static boost::asio::awaitable<void> call_hook(Call call) {
    if constexpr (std::is_void_v<decltype(call())>) {
      call();
      return noop();
    } else {
      return call();
    }
  }

  F f_;
};

}  // namespace detail

// Code the host can load for one id: the manifest it was written with and a
// factory. The registry holds these, never instances, until a request comes.
struct function_registration {
  manifest static_manifest;
  std::function<std::unique_ptr<detail::function_instance>()> make;

  template <function F, class... Args>
  static function_registration of(const manifest& m, Args... args) {
    return {m, [... args = std::move(args)]() mutable {
              return std::unique_ptr<detail::function_instance>(
                  std::make_unique<detail::erased_function<F>>(args...));
            }};
  }
};

namespace detail {

// Every FEZZ_FUNCTION in the program, in static-initialization order.
class registration_list {
 public:
  static registration_list& instance() {
    static registration_list list;
    return list;
  }
  void add(function_registration r) {
    std::lock_guard lock(mutex_);
    registrations_.push_back(std::move(r));
  }
  std::vector<function_registration> all() const {
    std::lock_guard lock(mutex_);
    return registrations_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<function_registration> registrations_;
};

template <class F>
struct auto_registration {
  explicit auto_registration(const manifest& m) {
    registration_list::instance().add(function_registration::of<F>(m));
  }
};

}  // namespace detail

// The FEZZ_FUNCTION registrations of this program, for fezz::server to pick up.
inline std::vector<function_registration> registered_functions() {
  return detail::registration_list::instance().all();
}

}  // namespace fezz

// Gives the struct it stands in its manifest, written as designated
// initializers (.id required; .version "v1", .method "GET", .path "/",
// .timeout 30s and .description "" by default), checks that manifest at
// compile time, and registers the struct for every fezz::server in the
// program. `name` must be the struct itself, which is checked too:
//
//   struct hello {
//     FEZZ_FUNCTION(hello, .id = "hello", .path = "/hello");
//     fezz::response fetch(const fezz::request& req, fezz::context&) const { ... }
//   };
//
// (Only a member function knows its struct, through `this`, so the name is
// checked inside one; it is never called.)
#define FEZZ_FUNCTION(name, ...)                                                      \
  static constexpr ::fezz::manifest manifest{__VA_ARGS__};                            \
  static_assert(::fezz::manifest_problem(manifest).empty(),                           \
                "FEZZ_FUNCTION(" #name "): invalid manifest, see manifest_problem");  \
  void fezz_check_name_() {                                                           \
    static_assert(::std::is_same_v<name, ::std::remove_reference_t<decltype(*this)>>, \
                  "FEZZ_FUNCTION(" #name                                              \
                  ", ...): the first argument must be the name of "                   \
                  "the struct it is written in");                                     \
  }                                                                                   \
  static inline const ::fezz::detail::auto_registration<name> fezz_registration_ {    \
    manifest                                                                          \
  }
