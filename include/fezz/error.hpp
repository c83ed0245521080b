#pragma once

// The error a function throws (or returns, since a response converts from it)
// to answer with a status of its choosing instead of a 500.

#include <ostream>  // Boost 1.81's status.hpp uses std::ostream without including it

#include <boost/beast/http/status.hpp>

#include <stdexcept>
#include <string>

namespace fezz {

class error : public std::runtime_error {
 public:
  explicit error(const std::string& message)
      : error(boost::beast::http::status::internal_server_error, message) {}
  error(boost::beast::http::status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}

  boost::beast::http::status status() const noexcept { return status_; }

 private:
  boost::beast::http::status status_;
};

}  // namespace fezz
