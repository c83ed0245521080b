#pragma once

// The first stage of a request: bytes from the connection's buffer into one
// parsed request, with the config's limits and a precise status for what is
// malformed. It does no I/O; the connection reads when it says `need_more`.

#include <fezz/config.hpp>

#include <fmt/format.h>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace fezz::host {

namespace beast = boost::beast;
namespace http = beast::http;

// A request the connection answers itself, without routing it.
struct rejection {
  http::status status;
  std::string message;
};

class request_reader {
 public:
  using message_type = http::request<http::string_body>;

  enum class state {
    need_more,    // read more bytes, then parse again
    header_done,  // the header section is complete and a body follows (once per request)
    complete,     // the whole request is parsed: release() it
    rejected,     // answer rejection() and close
    closed,       // the bytes are not HTTP at all: close without an answer
  };

  // Keeps a reference to `settings`, which must outlive the reader.
  explicit request_reader(const config& settings) : settings_(settings) {
    parser_.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(
        settings.max_header_bytes(), std::numeric_limits<std::uint32_t>::max())));
    parser_.body_limit(settings.max_body_bytes());
  }
  explicit request_reader(const config&&) = delete;

  // Parses what `in` holds and consumes what it used.
  state parse(beast::flat_buffer& in) {
    for (;;) {
      const bool header_was_done = parser_.is_header_done();
      beast::error_code ec;
      const std::size_t used = in.size() == 0 ? 0 : parser_.put(in.data(), ec);
      in.consume(used);
      if (ec && ec != http::error::need_more) {
        rejection_ = classify(ec, in);
        return rejection_ ? state::rejected : state::closed;
      }
      if (!header_was_done) {
        header_bytes_ += used;  // not eager yet: a put stops where the header section ends
        if (parser_.is_header_done()) {
          if ((rejection_ = check_header())) {
            return state::rejected;
          }
          if (parser_.chunked()) {
            header_section_ = parser_.get().base();  // see release()
          }
          parser_.eager(true);
          if (!parser_.is_done()) {
            return state::header_done;
          }
        }
      }
      if (parser_.is_done()) {
        return state::complete;
      }
      if (in.size() == 0 || ec == http::error::need_more) {
        return state::need_more;
      }
    }
  }

  // After header_done: the client waits for "100 Continue" before it sends the body.
  bool expects_continue() const { return !parser_.get()[http::field::expect].empty(); }
  // The HTTP version of the request, once its request line is parsed (11 before).
  unsigned version() const { return parser_.get().version() == 10 ? 10 : 11; }

  const rejection& why() const { return *rejection_; }
  message_type release() {
    message_type message = parser_.release();
    // Beast adds a chunked body's trailer fields to the header's. RFC 9110 6.5.2 forbids
    // that merge (a proxy screened the header section, not the trailer): drop them.
    if (header_section_) {
      message.base() = std::move(*header_section_);
    }
    return message;
  }

 private:
  // The status for a parse error, or nullopt when the connection just ends.
  std::optional<rejection> classify(const beast::error_code& ec,
                                    const beast::flat_buffer& in) const {
    const auto& s = settings_;
    if (ec == http::error::header_limit) {
      std::string_view target = parser_.get().target();
      // Once it has asked for more, Beast parses a request line again only when the header
      // section ends: after a read that stopped inside the line, the target is not known.
      // Parse the buffered bytes afresh, so the status does not depend on how reads fell.
      http::request_parser<http::string_body> fresh;
      if (target.empty() && in.size() != 0) {
        fresh.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(
            s.max_header_bytes(), std::numeric_limits<std::uint32_t>::max())));
        beast::error_code fresh_ec;
        fresh.put(in.data(), fresh_ec);
        if (fresh_ec && fresh_ec != http::error::header_limit &&
            fresh_ec != http::error::need_more) {
          return classify(fresh_ec, in);  // a malformed request line
        }
        target = fresh.get().target();
        // A line that ended within the limit yet gave no target is malformed, not long.
        const std::string_view line(static_cast<const char*>(in.data().data()),
                                    std::min(in.size(), s.max_header_bytes()));
        if (target.empty() && line.find('\n') != std::string_view::npos) {
          return rejection{http::status::bad_request, "malformed request: bad request line"};
        }
      }
      // No target yet means the request line alone overran the limit: its target is too long.
      if (target.empty() || target.size() > s.max_target_bytes()) {
        return rejection{http::status::uri_too_long,
                         fmt::format("request target exceeds {} bytes", s.max_target_bytes())};
      }
      return rejection{http::status::request_header_fields_too_large,
                       fmt::format("header section exceeds {} bytes", s.max_header_bytes())};
    }
    if (ec == http::error::body_limit) {
      return rejection{http::status::payload_too_large,
                       fmt::format("body exceeds {} bytes", s.max_body_bytes())};
    }
    if (ec == http::error::bad_transfer_encoding) {
      return rejection{http::status::not_implemented, "unsupported Transfer-Encoding"};
    }
    if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
      return rejection{http::status::bad_request, "malformed request: " + ec.message()};
    }
    return std::nullopt;
  }

  // What is wrong with a complete header section, if anything.
  std::optional<rejection> check_header() const {
    const auto& s = settings_;
    const auto& head = parser_.get();
    if (head.target().size() > s.max_target_bytes()) {
      return rejection{http::status::uri_too_long,
                       fmt::format("request target exceeds {} bytes", s.max_target_bytes())};
    }
    // Beast's own limit does not count what a first put consumed.
    if (header_bytes_ > s.max_header_bytes()) {
      return rejection{http::status::request_header_fields_too_large,
                       fmt::format("header section exceeds {} bytes", s.max_header_bytes())};
    }
    // Beast reads only chunked framing; any other coding is not ours to guess (RFC 9112 6.1).
    if (const auto coding = head[http::field::transfer_encoding];
        !coding.empty() && !beast::iequals(coding, "chunked")) {
      return rejection{http::status::not_implemented,
                       fmt::format("Transfer-Encoding '{}' is not supported", coding)};
    }
    if (const auto expect = head[http::field::expect];
        !expect.empty() && !beast::iequals(expect, "100-continue")) {
      return rejection{http::status::expectation_failed, "only 100-continue is supported"};
    }
    return std::nullopt;
  }

  const config& settings_;
  http::request_parser<http::string_body> parser_;
  std::size_t header_bytes_ = 0;
  std::optional<http::request_header<>> header_section_;  // of a chunked request
  std::optional<rejection> rejection_;
};

}  // namespace fezz::host
