// Fuzzes fezz::host::request_reader as a connection drives it: a byte stream
// arrives in slices, and each complete request is followed by a fresh reader
// on what is left in the buffer (pipelining), until a rejection, a closed
// connection or the end of the stream.
//
// Input layout (FuzzedDataProvider reads integers from the end): the last 3
// bytes choose the limits, the 8 before them the sizes of the slices (used in
// turn, over and over), and the rest, from the front, is the byte stream. A
// seed is a raw request followed by 11 such bytes.
//
// Invariants checked (a violation traps):
//   - the reader only consumes a prefix of what it was given: what it leaves in
//     the buffer is exactly the tail of the bytes fed so far;
//   - each complete request consumed at least one byte, and `header_done` comes
//     at most once per request and before any body;
//   - a complete request respects every limit (target, header section, body)
//     and carries no Transfer-Encoding or Expect the reader says it refuses;
//   - a rejection has a 4xx/5xx status and a message, and a limit's status (413,
//     414, 431) comes only when what arrived of the request exceeds that limit;
//   - parsing ends (libFuzzer's -timeout catches a reader that never returns);
//   - the verdicts (each request, then how the stream ended) do not depend on
//     how the stream was sliced: it is parsed again in one piece and compared
//     (the differences Beast allows are explained at same_end).

#include <fezz/detail/uri.hpp>
#include <fezz/host/request_reader.hpp>

#include <fuzzer/FuzzedDataProvider.h>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using fezz::host::request_reader;
using state = request_reader::state;

// Traps on a broken invariant, saying which.
#define check(invariant) check_at(invariant, __LINE__)
void check_at(bool invariant, int line) {
  if (!invariant) {
    std::fprintf(stderr, "request_reader_fuzz.cpp:%d: invariant broken\n", line);
    __builtin_trap();
  }
}

// What the reader made of a stream: one line per complete request, then how it ended.
struct verdicts {
  std::vector<std::string> requests;
  std::string end;  // "need_more", "rejected <status>" or "closed"
};

std::string describe(const request_reader::message_type& message) {
  std::string out;
  out.append(message.method_string()).append(" ").append(message.target());
  out += " " + std::to_string(message.version());
  for (const auto& field : message) {
    out.append("\n").append(field.name_string()).append(": ").append(field.value());
  }
  out += "\n\n" + message.body();
  return out;
}

// Checks what the reader promises about a request it completed.
void check_complete(const request_reader::message_type& message, const fezz::config& limits,
                    std::size_t consumed, bool saw_header_done) {
  check(consumed > 0);
  check(!message.target().empty());
  check(message.target().size() <= limits.max_target_bytes());
  check(message.body().size() <= limits.max_body_bytes());
  // A body is only read after header_done, which is when a connection sends 100 Continue.
  check(saw_header_done || message.body().empty());
  if (!message.chunked()) {
    // Without chunked framing, what is not body is the header section.
    check(consumed >= message.body().size());
    check(consumed - message.body().size() <= limits.max_header_bytes());
  }
  const auto coding = message[http::field::transfer_encoding];
  check(coding.empty() || beast::iequals(coding, "chunked"));
  // HTTP/1.0 expectations are ignored (RFC 9110 10.1.1); HTTP/1.1 ones are refused but one.
  const auto expect = message[http::field::expect];
  check(message.version() == 10 || expect.empty() || beast::iequals(expect, "100-continue"));
  // Framing the host does not read is refused: no Transfer-Encoding in HTTP/1.0, one Host.
  check(message.version() == 11 || coding.empty());
  check(message.count(http::field::host) <= 1);
  check(message.version() == 10 || message.count(http::field::host) == 1);
  check(message.version() == 10 || message.version() == 11);
}

bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && beast::iequals(text.substr(0, prefix.size()), prefix);
}

// Whether a Content-Length line of `folded` declares more than `limit` bytes.
bool declares_more_than(std::string_view folded, std::size_t limit) {
  // Beast reads an obs-fold (CRLF then a space or a tab) as a space (RFC 9112 5.2).
  std::string header(folded);
  for (std::size_t fold = header.find("\r\n"); fold != std::string::npos;
       fold = header.find("\r\n", fold + 1)) {
    if (fold + 2 < header.size() && (header[fold + 2] == ' ' || header[fold + 2] == '\t')) {
      header.replace(fold, 3, " ");
    }
  }
  for (std::size_t at = 0; at < header.size();) {
    const std::size_t end = std::min(header.find('\n', at), header.size());
    std::string_view line = std::string_view(header).substr(at, end - at);
    at = end + 1;
    if (!starts_with_ignoring_case(line, "content-length:")) {
      continue;
    }
    line.remove_prefix(std::min(line.find_first_not_of(" \t", 15), line.size()));
    std::size_t value = 0;
    for (const char c : line) {
      if (c < '0' || c > '9') {
        break;
      }
      value = value * 10 + static_cast<std::size_t>(c - '0');
      if (value > limit) {
        return true;  // before it can overflow
      }
    }
  }
  return false;
}

// Whether the chunk sizes that arrived in `body` add up to more than `limit` bytes.
bool chunks_declare_more_than(std::string_view body, std::size_t limit) {
  std::size_t total = 0;
  for (std::size_t at = 0; at < body.size();) {
    std::size_t size = 0;
    std::size_t digits = 0;
    for (; at + digits < body.size(); ++digits) {
      const int digit = fezz::detail::hex_digit_value(body[at + digits]);
      if (digit < 0) {
        break;
      }
      size = size * 16 + static_cast<std::size_t>(digit);
      if (total + size > limit) {
        return true;  // before it can overflow
      }
    }
    const std::size_t line_end = body.find('\n', at);
    if (digits == 0 || line_end == std::string_view::npos) {
      return false;
    }
    total += size;
    at = line_end + 1 + size + 2;  // the data and its CRLF
  }
  return false;
}

// Whether a chunk line of `body` has a quoted extension that does not end on that line.
// Beast 1.81 takes the chunk's size off the body limit each time it reads such a line
// again, so a small chunk earns a 413 as more bytes arrive.
bool has_unended_quoted_extension(std::string_view body) {
  for (std::size_t at = 0; at < body.size();) {
    const std::size_t end = std::min(body.find('\n', at), body.size());
    const std::string_view line = body.substr(at, end - at);
    at = end + 1;
    if (line.find(';') != std::string_view::npos &&
        std::count(line.begin(), line.end(), '"') % 2 == 1) {
      return true;
    }
  }
  return false;
}

// A limit's status is never given to a request within that limit. `request` is what had
// arrived of it when it was rejected.
void check_limit_is_exceeded(unsigned status, std::string_view request,
                             const fezz::config& limits) {
  const std::size_t header_end = request.find("\r\n\r\n");
  const std::size_t header_size =
      header_end == std::string_view::npos ? request.size() : header_end + 4;
  if (status == 431) {
    // A header section that has not ended by the limit is over it; or a chunked
    // body's trailer section is, and then what arrived of the body is longer too.
    check(header_end == std::string_view::npos
              ? header_size >= limits.max_header_bytes()
              : header_size > limits.max_header_bytes() ||
                    request.size() - header_size > limits.max_header_bytes());
  } else if (status == 414) {
    // The request line did not end within the header limit, or its target is too long.
    const std::size_t line_end = request.find('\n');
    const std::string_view line = request.substr(0, line_end);
    std::string_view target;  // between the first two spaces
    if (const std::size_t space = line.find(' '); space != std::string_view::npos) {
      target = line.substr(space + 1);
      target = target.substr(0, target.find(' '));
    }
    check(line_end == std::string_view::npos || line_end >= limits.max_header_bytes() ||
          target.size() > limits.max_target_bytes());
  } else if (status == 413) {
    const std::size_t body_arrived = request.size() - header_size;  // chunk framing included
    check(declares_more_than(request.substr(0, header_size), limits.max_body_bytes()) ||
          chunks_declare_more_than(request.substr(header_size), limits.max_body_bytes()) ||
          has_unended_quoted_extension(request.substr(header_size)) ||
          body_arrived > limits.max_body_bytes());
  }
}

// Feeds `stream` to readers in slices of the given sizes (cycled; 0 means "parse again
// without new bytes") and checks the invariants along the way.
verdicts run(std::string_view stream, const std::vector<std::size_t>& slice_sizes,
             const fezz::config& limits) {
  verdicts out;
  beast::flat_buffer in;
  std::size_t fed = 0;  // bytes of `stream` put in the buffer so far
  std::size_t next_slice = 0;
  // A request cannot be shorter than one byte, so this many of them is a loop that never ends.
  const std::size_t most_requests = stream.size() + 1;

  const auto feed = [&] {
    const std::size_t want = slice_sizes[next_slice++ % slice_sizes.size()];
    const std::size_t n = std::min(want, stream.size() - fed);
    const auto copied =
        boost::asio::buffer_copy(in.prepare(n), boost::asio::buffer(stream.substr(fed, n)));
    in.commit(copied);
    fed += copied;
  };
  const auto buffer_is_tail_of_fed = [&] {
    return in.size() <= fed &&
           (in.size() == 0 ||
            std::memcmp(in.data().data(), stream.data() + (fed - in.size()), in.size()) == 0);
  };

  while (out.requests.size() < most_requests) {
    request_reader reader(limits);
    const std::size_t start = fed - in.size();  // where this request begins in the stream
    bool saw_header_done = false;
    // Each turn feeds the stream (at most 7 empty slices in a row), ends, or is the one
    // header_done: a reader that keeps answering need_more cannot make this loop spin.
    for (;;) {
      const std::size_t before = in.size();
      const state parsed = reader.parse(in);
      check(in.size() <= before && in.size() <= fed - start);
      // The bytes are compared when a request or the stream ends (at each step: too slow).
      if (parsed != state::need_more || fed == stream.size()) {
        check(buffer_is_tail_of_fed());
      }
      if (parsed == state::need_more) {
        if (fed == stream.size()) {
          out.end = "need_more";
          return out;
        }
        feed();
      } else if (parsed == state::header_done) {
        check(!saw_header_done);
        saw_header_done = true;
        (void)reader.expects_continue();
        check(reader.version() == 10 || reader.version() == 11);
      } else if (parsed == state::complete) {
        auto message = reader.release();
        check_complete(message, limits, fed - in.size() - start, saw_header_done);
        out.requests.push_back(describe(message));
        break;
      } else if (parsed == state::rejected) {
        const auto& why = reader.why();
        const auto status = static_cast<unsigned>(why.status);
        check(status >= 400 && status <= 599);
        check(!why.message.empty());
        check_limit_is_exceeded(status, stream.substr(start, fed - start), limits);
        out.end = "rejected " + std::to_string(status);
        return out;
      } else {
        check(parsed == state::closed);
        out.end = "closed";
        return out;
      }
    }
  }
  check(false);
  return out;
}

// How reads fall may change two things, and only these. When a rejection comes: Beast
// looks at a header section again only once it ends or reaches the limit, and counts a
// request line it has already consumed apart from the limit, so one side may still be
// waiting for bytes that cannot save the request. And which rejection, for a request
// over a limit (413, 414, 431; each checked on its own by check_limit_is_exceeded) and
// wrong in another way too: either fault may be found first.
bool same_end(const std::string& sliced, const std::string& whole) {
  if (sliced == whole) {
    return true;
  }
  if (sliced == "need_more" || whole == "need_more") {
    return sliced.starts_with("rejected ") || whole.starts_with("rejected ");
  }
  const auto is_limit = [](const std::string& end) {
    return end == "rejected 413" || end == "rejected 414" || end == "rejected 431";
  };
  return sliced.starts_with("rejected ") && whole.starts_with("rejected ") &&
         (is_limit(sliced) || is_limit(whole));
}

// For a reproducer: what each way of feeding the stream gave.
void print(const char* how, const verdicts& v) {
  std::fprintf(stderr, "--- %s: %zu requests, then %s\n", how, v.requests.size(), v.end.c_str());
  for (const std::string& request : v.requests) {
    std::fprintf(stderr, "%s\n---\n", request.c_str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider provider(data, size);
  // Small limits, so that every limit is reached; a byte each.
  const auto limits = fezz::config()
                          .max_target_bytes(provider.ConsumeIntegralInRange<std::size_t>(1, 256))
                          .max_header_bytes(16 + 4 * provider.ConsumeIntegral<std::uint8_t>())
                          .max_body_bytes(provider.ConsumeIntegral<std::uint8_t>());
  std::vector<std::size_t> slice_sizes(8);
  for (std::size_t& n : slice_sizes) {
    n = provider.ConsumeIntegral<std::uint8_t>();
  }
  slice_sizes.back() = std::max<std::size_t>(slice_sizes.back(), 1);  // the stream always advances
  const std::string stream = provider.ConsumeRemainingBytesAsString();

  const verdicts sliced = run(stream, slice_sizes, limits);
  const verdicts whole = run(stream, {stream.size() + 1}, limits);
  if (sliced.requests != whole.requests || !same_end(sliced.end, whole.end)) {
    print("in slices", sliced);
    print("in one piece", whole);
    __builtin_trap();
  }
  return 0;
}
