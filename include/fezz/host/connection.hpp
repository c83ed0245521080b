#pragma once

// One client connection: HTTP/1.1 with keep-alive and pipelining, the limits
// and timeouts of the config, and a precise status for anything malformed.
//
// The request path is kept lean on purpose. One coroutine frame serves the
// connection's whole life: requests are parsed straight out of its buffer (a
// socket read only when the reader needs more), a loaded synchronous function
// is called without another frame, answers are serialized into one output
// buffer so a pipelined batch leaves in a single write, in order, and a
// timeout is a deadline the server's sweeper compares against a coarse clock,
// not a timer armed and cancelled around every read and write.

#include <fezz/detail/async.hpp>
#include <fezz/detail/coarse_clock.hpp>
#include <fezz/detail/date_text.hpp>
#include <fezz/detail/request_id.hpp>
#include <fezz/host/dispatch.hpp>
#include <fezz/host/host_state.hpp>
#include <fezz/host/request_reader.hpp>
#include <fezz/host/response_writer.hpp>
#include <fezz/host/routing.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <atomic>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

namespace fezz::host {

namespace asio = boost::asio;
namespace beast = boost::beast;

class connection : public std::enable_shared_from_this<connection> {
 public:
  using clock = detail::coarse_clock;

  connection(host_state& host, asio::ip::tcp::socket socket)
      : host_(host), socket_(std::move(socket)) {}

  asio::awaitable<void> run();

  asio::any_io_executor executor() { return socket_.get_executor(); }

  // When the connection's current wait runs out (clock ticks); read by the
  // server's sweeper from another thread.
  clock::rep deadline() const noexcept { return deadline_.load(std::memory_order_relaxed); }

  // On the connection's executor. Sweeper: close if the deadline has really
  // passed. Drain: close if waiting between requests. Drain timeout: close.
  void expire_if_due() {
    if (clock::now().time_since_epoch().count() >= deadline()) {
      close();
    }
  }
  void close_if_idle() {
    if (idle_) {
      close();
    }
  }
  void close() {
    beast::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  void expire_after(config::duration d) noexcept {
    deadline_.store((clock::now() + d).time_since_epoch().count(), std::memory_order_relaxed);
  }
  void never_expire() noexcept {
    deadline_.store(std::numeric_limits<clock::rep>::max(), std::memory_order_relaxed);
  }

  // The socket operations, to be awaited where they are called.
  auto read_more() {
    return socket_.async_read_some(in_.prepare(16 * 1024), detail::nothrow_awaitable);
  }
  // Writes everything in out_, consuming it, within the write timeout.
  auto write_out() {
    expire_after(host_.settings.write_timeout());
    return asio::async_write(socket_, asio::dynamic_buffer(out_), detail::nothrow_awaitable);
  }

  // After an answer that ends the connection while the client may still be
  // sending: stop sending, then read and drop what comes, until the client
  // closes or linger_timeout passes (RFC 9112 9.6). Closing with bytes unread
  // would send a reset, and the client's TCP could drop the answer before the
  // client has read it.
  asio::awaitable<void> linger() {
    const auto timeout = host_.settings.linger_timeout();
    if (timeout <= config::duration::zero()) {
      co_return;
    }
    beast::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    expire_after(timeout);  // the sweeper closes the socket then, which ends the read
    for (;;) {
      auto [ec, n] = co_await read_more();
      in_.clear();
      if (ec) {
        co_return;
      }
    }
  }

  void append(const response::message_type& res, unsigned version, bool keep_alive, bool head) {
    host_.metrics.count_response(res.result_int());
    const bool draining = host_.draining.load(std::memory_order_relaxed);
    write_response(res, {version, keep_alive, head, draining, detail::http_date(), request_id_},
                   out_);
  }
  void append_rejection(const rejection& r, unsigned version) {
    host_.metrics.rejected_total.fetch_add(1, std::memory_order_relaxed);
    detail::make_request_id(request_id_);
    append(response::error(r.status, r.message).message(), version, false, false);
  }

  host_state& host_;
  asio::ip::tcp::socket socket_;
  beast::flat_buffer in_;
  std::string out_;  // serialized answers not yet written
  routing_cache routes_;
  std::string request_id_;  // of the request being answered; its storage is reused
  std::atomic<clock::rep> deadline_{std::numeric_limits<clock::rep>::max()};
  bool idle_ = true;
};

// One frame for the connection's whole life: reads, writes and a waiting
// call are awaited here, not in nested coroutines that would each cost a
// frame per request.
inline asio::awaitable<void> connection::run() {
  using state = request_reader::state;
  const config& s = host_.settings;
  for (;;) {
    // Between requests the keep-alive timeout runs until a first byte arrives;
    // then the whole header section must arrive within the header timeout.
    idle_ = in_.size() == 0;
    if (idle_) {
      if (host_.closing.load(std::memory_order_relaxed)) {
        break;
      }
      expire_after(s.keep_alive_timeout());
      auto [ec, n] = co_await read_more();
      in_.commit(n);
      if (ec) {
        break;
      }
      idle_ = false;
    }
    expire_after(s.header_timeout());

    request_reader reader(s);
    auto parsed = reader.parse(in_);
    for (; parsed == state::need_more || parsed == state::header_done; parsed = reader.parse(in_)) {
      if (parsed == state::header_done) {
        if (reader.expects_continue()) {
          out_ += "HTTP/1.1 100 Continue\r\n\r\n";
          auto [ec, n] = co_await write_out();
          if (ec) {
            break;
          }
        }
        expire_after(s.body_timeout());
      } else {
        auto [ec, n] = co_await read_more();
        in_.commit(n);
        if (ec) {
          break;  // ended or timed out mid-request: nothing to answer
        }
      }
    }
    if (parsed == state::rejected) {
      append_rejection(reader.why(), reader.version());
      auto [ec, n] = co_await write_out();
      if (!ec) {
        co_await linger();
      }
    }
    if (parsed != state::complete) {
      break;
    }
    never_expire();

    auto message = reader.release();
    const bool is_head = message.method() == http::verb::head;
    const unsigned version = message.version();
    bool keep_alive = message.keep_alive();
    if (const auto given = message["x-request-id"]; detail::is_acceptable_request_id(given)) {
      request_id_.assign(given.data(), given.size());
    } else {
      detail::make_request_id(request_id_);
    }
    host_.metrics.requests_total.fetch_add(1, std::memory_order_relaxed);

    auto outcome = dispatch(host_, routes_, std::move(message), request_id_);
    if (auto* waiting = std::get_if<1>(&outcome)) {
      response answer = co_await std::move(*waiting);
      outcome = std::move(answer);
    }
    keep_alive = keep_alive && !host_.closing.load(std::memory_order_relaxed);
    append(std::get<0>(outcome).message(), version, keep_alive, is_head);

    // A pipelined request already buffered is answered before writing, so a
    // batch leaves in one write; a large backlog of answers is written first.
    if (!keep_alive || in_.size() == 0 || out_.size() >= 64 * 1024) {
      auto [ec, n] = co_await write_out();
      never_expire();
      if (ec || !keep_alive) {
        break;
      }
    }
  }
  beast::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  socket_.close(ignored);
}

}  // namespace fezz::host
