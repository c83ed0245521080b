#pragma once

// One connection to one etcd endpoint, plain TCP or TLS: connects (name resolution, TCP,
// then the TLS handshake with SNI and host name verification), writes HTTP requests and
// reads HTTP responses, each without exceptions, for coroutines. Also the TLS context that
// a client's connections share (make_tls_context).

#include <fezz/detail/async.hpp>
#include <fezz/etcd/endpoint.hpp>

#include <ostream>  // before Beast: Boost 1.81's http/status.hpp needs it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/ssl.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>

namespace fezz::etcd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

namespace detail {

// The TLS context of a client of etcd: it verifies etcd's certificate against `ca_file`
// (empty: the system's trusted CAs) and presents `cert_file` with `key_file` (empty: the
// key is in cert_file) when given. Throws std::runtime_error when a file cannot be loaded.
inline std::unique_ptr<asio::ssl::context> make_tls_context(const std::string& ca_file,
                                                            const std::string& cert_file,
                                                            const std::string& key_file) {
  auto tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3);
  beast::error_code error;
  if (!ca_file.empty()) {
    tls->load_verify_file(ca_file, error);
    if (error) {
      throw std::runtime_error("etcd: cannot load the CA file " + ca_file + ": " + error.message());
    }
  } else {
    tls->set_default_verify_paths(error);
  }
  if (!cert_file.empty()) {
    tls->use_certificate_chain_file(cert_file, error);
    if (error) {
      throw std::runtime_error("etcd: cannot load the certificate " + cert_file + ": " +
                               error.message());
    }
    tls->use_private_key_file(key_file.empty() ? cert_file : key_file, asio::ssl::context::pem,
                              error);
    if (error) {
      throw std::runtime_error("etcd: cannot load the key " + key_file + ": " + error.message());
    }
  }
  return tls;
}

// One connection to one endpoint, plain or TLS.
class connection {
 public:
  using plain_stream = beast::tcp_stream;
  using tls_stream = beast::ssl_stream<beast::tcp_stream>;

  connection(asio::any_io_executor executor, asio::ssl::context* tls, std::size_t endpoint_index)
      : endpoint_index(endpoint_index) {
    if (tls != nullptr) {
      secure_ = std::make_unique<tls_stream>(executor, *tls);
    } else {
      plain_ = std::make_unique<plain_stream>(executor);
    }
  }

  beast::tcp_stream& tcp() { return secure_ ? beast::get_lowest_layer(*secure_) : *plain_; }

  asio::awaitable<beast::error_code> connect(const endpoint& where,
                                             std::chrono::milliseconds timeout) {
    asio::ip::tcp::resolver resolver(tcp().get_executor());
    auto [resolve_error, results] =
        co_await resolver.async_resolve(where.host, where.port, fezz::detail::nothrow_awaitable);
    if (resolve_error) {
      co_return resolve_error;
    }
    tcp().expires_after(timeout);
    auto [connect_error, connected] =
        co_await tcp().async_connect(results, fezz::detail::nothrow_awaitable);
    (void)connected;
    if (connect_error) {
      co_return connect_error;
    }
    auto& socket = tcp().socket();
    beast::error_code ignored;
    socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    socket.set_option(asio::socket_base::keep_alive(true), ignored);
    if (secure_) {
      beast::error_code not_an_address;
      asio::ip::make_address(where.host, not_an_address);
      if (not_an_address) {  // SNI only for names, as RFC 6066 says
        SSL_set_tlsext_host_name(secure_->native_handle(), where.host.c_str());
      }
      secure_->set_verify_mode(asio::ssl::verify_peer);
      secure_->set_verify_callback(asio::ssl::host_name_verification(where.host));
      auto [handshake_error] = co_await secure_->async_handshake(asio::ssl::stream_base::client,
                                                                 fezz::detail::nothrow_awaitable);
      if (handshake_error) {
        co_return handshake_error;
      }
    }
    tcp().expires_never();
    co_return beast::error_code{};
  }

  template <class Request>
  asio::awaitable<beast::error_code> write(Request& request) {
    if (secure_) {
      auto [error, n] =
          co_await http::async_write(*secure_, request, fezz::detail::nothrow_awaitable);
      (void)n;
      co_return error;
    }
    auto [error, n] = co_await http::async_write(*plain_, request, fezz::detail::nothrow_awaitable);
    (void)n;
    co_return error;
  }

  template <class Parser>
  asio::awaitable<beast::error_code> read_header(Parser& parser) {
    if (secure_) {
      auto [error, n] = co_await http::async_read_header(*secure_, buffer, parser,
                                                         fezz::detail::nothrow_awaitable);
      (void)n;
      co_return error;
    }
    auto [error, n] =
        co_await http::async_read_header(*plain_, buffer, parser, fezz::detail::nothrow_awaitable);
    (void)n;
    co_return error;
  }

  template <class Parser>
  asio::awaitable<beast::error_code> read_some(Parser& parser) {
    if (secure_) {
      auto [error, n] =
          co_await http::async_read_some(*secure_, buffer, parser, fezz::detail::nothrow_awaitable);
      (void)n;
      co_return error;
    }
    auto [error, n] =
        co_await http::async_read_some(*plain_, buffer, parser, fezz::detail::nothrow_awaitable);
    (void)n;
    co_return error;
  }

  template <class Parser>
  asio::awaitable<beast::error_code> read(Parser& parser) {
    if (secure_) {
      auto [error, n] =
          co_await http::async_read(*secure_, buffer, parser, fezz::detail::nothrow_awaitable);
      (void)n;
      co_return error;
    }
    auto [error, n] =
        co_await http::async_read(*plain_, buffer, parser, fezz::detail::nothrow_awaitable);
    (void)n;
    co_return error;
  }

  // Ends the connection at once; pending operations complete with an error.
  void close() {
    beast::error_code ignored;
    tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    tcp().close();
  }

  const std::size_t endpoint_index;
  beast::flat_buffer buffer;
  bool reused = false;  // served a request before

 private:
  std::unique_ptr<plain_stream> plain_;
  std::unique_ptr<tls_stream> secure_;
};

}  // namespace detail

}  // namespace fezz::etcd
