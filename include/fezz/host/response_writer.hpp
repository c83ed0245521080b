#pragma once

// The last stage of a request: a response into the connection's output
// buffer as HTTP/1.1 bytes, in one pass. The function's headers go out as it
// set them; the host adds its own (Server, Date, x-request-id, Content-Length,
// Connection) straight into the bytes rather than into the message, which
// would cost an allocation each.

#include <fezz/response.hpp>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>

#include <charconv>
#include <string>
#include <string_view>

namespace fezz::host {

// How one answer is framed on its connection.
struct response_framing {
  unsigned version = 11;  // the request's: 10 or 11
  bool keep_alive = true;
  bool head = false;  // a HEAD request: the GET answer's Content-Length, no body
  // The host is draining: tell the proxy at once (Envoy acts on this header).
  bool draining = false;
  std::string_view date;
  std::string_view request_id;
};

// Headers only the host writes; a function's own values for them are dropped.
inline bool is_host_header(const http::fields::value_type& f) noexcept {
  switch (f.name()) {
    case http::field::server:
    case http::field::date:
    case http::field::content_length:
    case http::field::transfer_encoding:
    case http::field::connection:
      return true;
    case http::field::unknown:
      return boost::beast::iequals(f.name_string(), "x-request-id");
    default:
      return false;
  }
}

inline void write_response(const response::message_type& res, const response_framing& framing,
                           std::string& out) {
  const unsigned status = res.result_int();
  // RFC 9110 15.2, 15.3.5, 15.4.5: these never carry content, nor a length for it.
  const bool bodiless = status < 200 || status == 204 || status == 304;
  const std::string_view reason = res.reason();
  char number[24];

  out += framing.version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out.append(number, std::to_chars(number, number + sizeof number, status).ptr);
  out += ' ';
  out += reason;
  out += "\r\n";
  for (const auto& f : res) {
    if (!is_host_header(f)) {
      out += f.name_string();
      out += ": ";
      out += f.value();
      out += "\r\n";
    }
  }
  out += "Server: fezz\r\nDate: ";
  out += framing.date;
  out += "\r\nx-request-id: ";
  out += framing.request_id;
  out += "\r\n";
  if (framing.draining) {
    out += "x-envoy-immediate-health-check-fail: true\r\n";
  }
  if (!bodiless) {
    out += "Content-Length: ";
    out.append(number, std::to_chars(number, number + sizeof number, res.body().size()).ptr);
    out += "\r\n";
  }
  if (framing.version == 10 && framing.keep_alive) {
    out += "Connection: keep-alive\r\n";
  } else if (framing.version != 10 && !framing.keep_alive) {
    out += "Connection: close\r\n";
  }
  out += "\r\n";
  if (!bodiless && !framing.head) {
    out += res.body();
  }
}

}  // namespace fezz::host
