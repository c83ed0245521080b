#pragma once

// fezz::response: what a function's fetch returns. It wraps the Beast message
// the connection serializes, so nothing is copied on the way out.

#include <fezz/error.hpp>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace fezz {

namespace http = boost::beast::http;

class response {
 public:
  using message_type = http::response<http::string_body>;

  response() : response(http::status::ok) {}
  explicit response(http::status status) { message_.result(status); }
  explicit response(unsigned status) { message_.result(status); }
  explicit response(message_type message) : message_(std::move(message)) {}
  // A thrown or returned fezz::error becomes its JSON error response.
  response(const fezz::error& e) : response(error(e.status(), e.what())) {}  // NOLINT: implicit

  // text/plain; charset=utf-8
  static response text(std::string body, http::status status = http::status::ok) {
    return response(status)
        .header(http::field::content_type, "text/plain; charset=utf-8")
        .body(std::move(body));
  }
  // application/json from any value nlohmann::json can hold. Strings that are
  // not valid UTF-8 (a percent-decoded %FF, say) get U+FFFD instead of throwing.
  static response json(const nlohmann::json& value, http::status status = http::status::ok) {
    return response(status)
        .header(http::field::content_type, "application/json")
        .body(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  // {"status":404,"error":"Not Found","message":"..."} with that status.
  static response error(http::status status, std::string_view message) {
    nlohmann::json body{{"status", static_cast<unsigned>(status)},
                        {"error", std::string(http::obsolete_reason(status))},
                        {"message", message}};
    return json(body, status);
  }

  response& status(http::status status) & {
    message_.result(status);
    return *this;
  }
  response&& status(http::status status) && { return std::move(this->status(status)); }
  http::status status() const noexcept { return message_.result(); }
  unsigned status_code() const noexcept { return message_.result_int(); }

  response& header(std::string_view name, std::string_view value) & {
    message_.set(name, value);
    return *this;
  }
  response&& header(std::string_view name, std::string_view value) && {
    return std::move(this->header(name, value));
  }
  response& header(http::field name, std::string_view value) & {
    message_.set(name, value);
    return *this;
  }
  response&& header(http::field name, std::string_view value) && {
    return std::move(this->header(name, value));
  }
  // The value of a response header; "" if absent.
  std::string_view header(std::string_view name) const {
    const auto it = message_.find(name);
    return it == message_.end() ? std::string_view{} : std::string_view(it->value());
  }

  response& body(std::string body) & {
    message_.body() = std::move(body);
    return *this;
  }
  response&& body(std::string body) && { return std::move(this->body(std::move(body))); }
  const std::string& body() const noexcept { return message_.body(); }

  const message_type& message() const noexcept { return message_; }
  message_type& message() noexcept { return message_; }

 private:
  message_type message_;
};

}  // namespace fezz
