#include <fezz/host/response_writer.hpp>

#include <catch2/catch.hpp>

#include <string>

namespace http = boost::beast::http;
using fezz::host::response_framing;
using fezz::host::write_response;

namespace {

std::string written(const fezz::response& res, unsigned version = 11, bool keep_alive = true,
                    bool head = false) {
  response_framing framing;
  framing.version = version;
  framing.keep_alive = keep_alive;
  framing.head = head;
  framing.date = "Tue, 24 Nov 2026 20:00:00 GMT";
  framing.request_id = "abc";
  std::string out = "before|";
  write_response(res.message(), framing, out);
  return out;
}

}  // namespace

TEST_CASE("response_writer writes status line, the function's headers, the host's, then the body",
          "[response_writer]") {
  const auto res = fezz::response::text("Hello").header("X-Custom", "1");
  CHECK(written(res) ==
        "before|HTTP/1.1 200 OK\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "X-Custom: 1\r\n"
        "Server: fezz\r\n"
        "Date: Tue, 24 Nov 2026 20:00:00 GMT\r\n"
        "x-request-id: abc\r\n"
        "Content-Length: 5\r\n"
        "\r\n"
        "Hello");
}

TEST_CASE("response_writer: the host owns framing headers; a function's are dropped",
          "[response_writer]") {
  const auto res = fezz::response(http::status::ok)
                       .header(http::field::content_length, "999")
                       .header(http::field::transfer_encoding, "chunked")
                       .header(http::field::connection, "upgrade")
                       .header(http::field::server, "other")
                       .header("X-Request-Id", "spoofed")
                       .body("abc");
  const auto out = written(res);
  CHECK(out.find("999") == std::string::npos);
  CHECK(out.find("chunked") == std::string::npos);
  CHECK(out.find("upgrade") == std::string::npos);
  CHECK(out.find("other") == std::string::npos);
  CHECK(out.find("spoofed") == std::string::npos);
  CHECK(out.find("Content-Length: 3\r\n") != std::string::npos);
}

TEST_CASE("response_writer frames HEAD, bodiless statuses, close and HTTP/1.0",
          "[response_writer]") {
  const auto hello = fezz::response::text("Hello");
  const auto head = written(hello, 11, true, true);
  CHECK(head.find("Content-Length: 5\r\n") != std::string::npos);
  CHECK(head.ends_with("\r\n\r\n"));

  const auto no_content = written(fezz::response(http::status::no_content).body("oops"));
  CHECK(no_content.starts_with("before|HTTP/1.1 204 No Content\r\n"));
  CHECK(no_content.find("Content-Length") == std::string::npos);
  CHECK(no_content.ends_with("\r\n\r\n"));

  const auto closing = written(hello, 11, false);
  CHECK(closing.find("Connection: close\r\n") != std::string::npos);

  const auto old_keep = written(hello, 10);
  CHECK(old_keep.starts_with("before|HTTP/1.0 200 OK\r\n"));
  CHECK(old_keep.find("Connection: keep-alive\r\n") != std::string::npos);
  const auto old_close = written(hello, 10, false);
  CHECK(old_close.find("Connection") == std::string::npos);

  auto custom = fezz::response(http::status::ok);
  custom.message().reason("Fine");
  CHECK(written(custom).starts_with("before|HTTP/1.1 200 Fine\r\n"));
}
