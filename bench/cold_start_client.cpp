// bench_cold_start: how much longer the first request to an unloaded function
// takes than a request to the same function while it is loaded.
//
// Start fezz_example with a short --idle-timeout, then:
//
//   bench_cold_start --port P [--path /hello] [--busy-path /users/1] [--samples 60]
//                    [--idle-ms 250]
//
// On one keep-alive connection, each sample is:
//   --idle-ms of back-to-back requests to --busy-path, another function: the
//   server stays busy, as a server whose one function has gone cold is, while
//   --path idles past its timeout and is unloaded; then
//   cold   a timed request to --path (send to the last byte of the response);
//   one more request to --busy-path, then
//   warm   a timed request to --path, loaded now, in the same conditions.
// Both timed requests follow the same traffic, so cold − warm is the load, not
// idle CPUs or cooled caches (an idle pause before the cold request alone made
// it 50-70 us slower on the benchmark machine, with nothing to load).
// Prints one JSON object with every sample in microseconds. Plain POSIX
// sockets keep the client's own cost small and constant.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& message) {
  std::cerr << "bench_cold_start: " << message << "\n";
  std::exit(1);
}

unsigned number(std::string_view flag, std::string_view text) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    die(std::string(flag) + " needs a whole number");
  }
  return value;
}

class client {
 public:
  explicit client(unsigned port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      die("cannot connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
    }
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~client() { ::close(fd_); }

  // One request and its whole response; returns the time it took in microseconds.
  double timed_request(const std::string& request) {
    const auto start = std::chrono::steady_clock::now();
    if (::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
      die("send failed");
    }
    read_response();
    const auto took = std::chrono::steady_clock::now() - start;
    return std::chrono::duration<double, std::micro>(took).count();
  }

 private:
  void read_response() {
    buffer_.clear();
    std::size_t header_end = std::string::npos;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      receive();
    }
    const std::string_view head(buffer_.data(), header_end);
    if (!head.starts_with("HTTP/1.1 200")) {
      die("expected 200, got: " + std::string(head.substr(0, head.find('\r'))));
    }
    std::size_t length = 0;
    for (std::size_t pos = head.find("\r\n"); pos != std::string_view::npos;) {
      const std::size_t next = head.find("\r\n", pos + 2);
      const std::string_view line = head.substr(pos + 2, next - pos - 2);
      constexpr std::string_view name = "content-length:";
      if (line.size() > name.size() && strncasecmp(line.data(), name.data(), name.size()) == 0) {
        std::string_view value = line.substr(name.size());
        while (!value.empty() && value.front() == ' ') {
          value.remove_prefix(1);
        }
        length = number("Content-Length", value);
      }
      pos = next;
    }
    while (buffer_.size() < header_end + 4 + length) {
      receive();
    }
  }

  void receive() {
    char chunk[4096];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) {
      die("the server closed the connection");
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }

  int fd_ = -1;
  std::string buffer_;
};

void print_array(const char* name, const std::vector<double>& values, bool last) {
  std::printf("\"%s\":[", name);
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::printf("%s%.1f", i == 0 ? "" : ",", values[i]);
  }
  std::printf("]%s", last ? "" : ",");
}

}  // namespace

std::string get_request(std::string_view path) {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
}

int main(int argc, char** argv) {
  unsigned port = 0;
  std::string path = "/hello";
  std::string busy_path = "/users/1";
  unsigned samples = 60;
  unsigned idle_ms = 250;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    const std::string_view value = argv[i + 1];
    if (flag == "--port") {
      port = number(flag, value);
    } else if (flag == "--path") {
      path = value;
    } else if (flag == "--busy-path") {
      busy_path = value;
    } else if (flag == "--samples") {
      samples = number(flag, value);
    } else if (flag == "--idle-ms") {
      idle_ms = number(flag, value);
    } else {
      die("unknown argument " + std::string(flag));
    }
  }
  if (port == 0 || port > 65535 || argc % 2 == 0) {
    die("usage: bench_cold_start --port P [--path /hello] [--busy-path /users/1] [--samples N] "
        "[--idle-ms MS]");
  }

  client c(port);
  const std::string request = get_request(path);
  const std::string busy = get_request(busy_path);
  c.timed_request(request);  // connection and first loads out of the way
  c.timed_request(busy);
  std::vector<double> cold, warm;
  for (unsigned i = 0; i < samples; ++i) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(idle_ms);
    while (std::chrono::steady_clock::now() < until) {
      c.timed_request(busy);
    }
    cold.push_back(c.timed_request(request));
    c.timed_request(busy);
    warm.push_back(c.timed_request(request));
  }
  std::printf("{");
  print_array("cold_us", cold, false);
  print_array("warm_us", warm, true);
  std::printf("}\n");
  return 0;
}
