#pragma once

// The first stage of a request: bytes from the connection's buffer into one
// parsed request, with the config's limits and a precise status for what is
// malformed. It does no I/O; the connection reads when it says `need_more`.
//
// Behind a proxy, any request the host frames differently from the proxy is a
// smuggling hole, so the framing rules of RFC 9112 are kept strictly: anything
// ambiguous is rejected, and a rejection always closes the connection.

#include <fezz/config.hpp>
#include <fezz/detail/uri.hpp>

#include <fmt/format.h>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <cstdint>
#include <iterator>
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
      // A chunked body is parsed a step at a time, so the step that ends it holds
      // just the last chunk's line and the trailer section: bound that before it goes.
      if (header_was_done && parser_.chunked() && parser_.is_done() &&
          (rejection_ = check_trailer({static_cast<const char*>(in.data().data()), used}))) {
        return state::rejected;
      }
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
          parser_.eager(!parser_.chunked());
          if (!parser_.is_done()) {
            return state::header_done;
          }
        }
      }
      if (parser_.is_done()) {
        return state::complete;
      }
      if (in.size() == 0 || ec == http::error::need_more) {
        if (parser_.is_header_done() && (rejection_ = check_unparsed(in))) {
          return state::rejected;
        }
        return state::need_more;
      }
    }
  }

  // After header_done: the client waits for "100 Continue" before it sends the
  // body. Never for HTTP/1.0, which has no 1xx answers (RFC 9110 10.1.1).
  bool expects_continue() const {
    return version() == 11 && !parser_.get()[http::field::expect].empty();
  }
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
  static rejection bad_request(std::string message) {
    return {http::status::bad_request, std::move(message)};
  }
  rejection target_too_long() const {
    return {http::status::uri_too_long,
            fmt::format("request target exceeds {} bytes", settings_.max_target_bytes())};
  }
  rejection header_too_large(std::string_view section = "header section") const {
    return {http::status::request_header_fields_too_large,
            fmt::format("{} exceeds {} bytes", section, settings_.max_header_bytes())};
  }

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
          return bad_request("malformed request: bad request line");
        }
      }
      // No target yet means the request line alone overran the limit: its target is too long.
      if (target.empty() || target.size() > s.max_target_bytes()) {
        return target_too_long();
      }
      return header_too_large();
    }
    if (ec == http::error::body_limit) {
      return rejection{http::status::payload_too_large,
                       fmt::format("body exceeds {} bytes", settings_.max_body_bytes())};
    }
    // Beast's verdict on Transfer-Encoding after Content-Length, or after a
    // first Transfer-Encoding that ended in chunked (RFC 9112 6.3).
    if (ec == http::error::bad_transfer_encoding) {
      return bad_request(
          "Transfer-Encoding conflicts with Content-Length or with an earlier Transfer-Encoding");
    }
    if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
      return bad_request("malformed request: " + ec.message());
    }
    return std::nullopt;
  }

  // What is wrong with a complete header section, if anything.
  std::optional<rejection> check_header() {
    const auto& s = settings_;
    auto& head = parser_.get();
    if (head.target().size() > s.max_target_bytes()) {
      return target_too_long();
    }
    // Beast's own limit does not count what a first put consumed.
    if (header_bytes_ > s.max_header_bytes()) {
      return header_too_large();
    }
    if (auto problem = check_target(head)) {
      return problem;
    }
    if (auto problem = check_host(head)) {
      return problem;
    }
    if (auto problem = check_transfer_encoding(head)) {
      return problem;
    }
    if (const auto expect = head[http::field::expect];
        version() == 11 && !expect.empty() && !beast::iequals(expect, "100-continue")) {
      return rejection{http::status::expectation_failed, "only 100-continue is supported"};
    }
    return std::nullopt;
  }

  // RFC 9112 3.2: origin-form ("/path?query"), absolute-form (routed by its
  // path and query), or "*" for OPTIONS; only visible ASCII.
  std::optional<rejection> check_target(message_type& head) const {
    const std::string_view target = head.target();
    for (std::size_t i = 0; i < target.size(); ++i) {
      if (!detail::is_target_byte(target[i])) {
        return bad_request(
            fmt::format("request target has byte 0x{:02X} at offset {}: "
                        "send it percent-encoded",
                        static_cast<unsigned char>(target[i]), i));
      }
    }
    if (target.starts_with('/') || (target == "*" && head.method() == http::verb::options)) {
      return std::nullopt;
    }
    if (auto origin = detail::origin_form_of(target)) {
      head.target(*origin);
      return std::nullopt;
    }
    return bad_request("request target must be a path or an absolute URI");
  }

  // RFC 9112 3.2: exactly one valid Host line in HTTP/1.1, at most one in 1.0.
  std::optional<rejection> check_host(const message_type& head) const {
    const auto [first, last] = head.equal_range(http::field::host);
    const auto count = std::distance(first, last);
    if (count == 0 && version() == 11) {
      return bad_request("an HTTP/1.1 request needs a Host header");
    }
    if (count > 1) {
      return bad_request("more than one Host header");
    }
    if (count == 1 && !detail::is_valid_host(first->value())) {
      return bad_request("invalid Host header");
    }
    return std::nullopt;
  }

  // RFC 9112 6.1 and 6.3: Transfer-Encoding lines, taken together, must end
  // in one "chunked"; another coding before it is one we do not decode (501).
  std::optional<rejection> check_transfer_encoding(const message_type& head) const {
    const auto [first, last] = head.equal_range(http::field::transfer_encoding);
    if (first == last) {
      return std::nullopt;
    }
    if (version() == 10) {
      return bad_request("Transfer-Encoding in an HTTP/1.0 request");
    }
    std::size_t codings = 0;
    std::size_t chunked = 0;
    bool chunked_last = false;
    for (auto it = first; it != last; ++it) {
      std::string_view rest = it->value();
      for (;;) {
        const auto comma = rest.find(',');
        std::string_view coding = rest.substr(0, comma);
        while (!coding.empty() && (coding.front() == ' ' || coding.front() == '\t')) {
          coding.remove_prefix(1);
        }
        while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t')) {
          coding.remove_suffix(1);
        }
        if (coding.empty()) {
          return bad_request("Transfer-Encoding has an empty coding");
        }
        ++codings;
        chunked_last = beast::iequals(coding, "chunked");
        chunked += chunked_last ? 1 : 0;
        if (comma == std::string_view::npos) {
          break;
        }
        rest.remove_prefix(comma + 1);
      }
    }
    if (!chunked_last || chunked != 1 || !parser_.chunked()) {
      return bad_request("Transfer-Encoding must end in chunked, applied once");
    }
    if (codings > 1) {
      return rejection{http::status::not_implemented,
                       "only the chunked Transfer-Encoding is supported"};
    }
    return std::nullopt;
  }

  // While a chunked body is read, the parser keeps a chunk-size line or the
  // trailer section buffered until it ends. Bound both (RFC 9112 7.1).
  std::optional<rejection> check_unparsed(const beast::flat_buffer& in) const {
    if (!parser_.chunked() || in.size() == 0) {
      return std::nullopt;
    }
    std::string_view rest(static_cast<const char*>(in.data().data()), in.size());
    if (rest.starts_with("\r\n")) {
      rest.remove_prefix(2);  // what ends the previous chunk's data
    }
    if (rest.find("\r\n") == std::string_view::npos) {
      if (rest.size() > settings_.max_chunk_line_bytes()) {
        return bad_request(
            fmt::format("chunk size line exceeds {} bytes", settings_.max_chunk_line_bytes()));
      }
      return std::nullopt;
    }
    // A whole line left unparsed is the last chunk's: its trailer section follows.
    return check_trailer(rest);
  }

  // `last` starts with the last chunk's line (after the CRLF that ends the
  // previous chunk's data, if any); what follows it is the trailer section,
  // whole or in part, its final CRLF counted. The same measure for a trailer
  // that is still arriving and one that has ended, so the verdict does not
  // depend on how the reads fell.
  std::optional<rejection> check_trailer(std::string_view last) const {
    if (last.starts_with("\r\n")) {
      last.remove_prefix(2);
    }
    const auto line_end = last.find("\r\n");
    if (line_end != std::string_view::npos &&
        last.size() - line_end - 2 > settings_.max_header_bytes()) {
      return header_too_large("trailer section");
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
