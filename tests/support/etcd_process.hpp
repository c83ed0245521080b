#pragma once

// Test support: a real etcd (Debian's /usr/bin/etcd) on loopback, on free ports, with a
// temporary data directory; etcdctl to change it behind a store's back; and free ports.
// The process is stopped by its id (SIGTERM, then SIGKILL) in the destructor, and dies
// with the test process if that is killed (PR_SET_PDEATHSIG).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace fezz::test {

// A port on 127.0.0.1 that was free a moment ago.
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    throw std::runtime_error("free_port: cannot bind");
  }
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

struct command_result {
  int status = -1;  // the exit code, or -1 if it did not exit normally
  std::string output;
};

// Runs a shell command, bounded by `timeout` (coreutils' timeout), stdout and stderr
// captured.
inline command_result run_command(const std::string& command, int timeout_seconds = 20) {
  const std::string bounded =
      "timeout -k 2 " + std::to_string(timeout_seconds) + " " + command + " 2>&1";
  command_result result;
  FILE* pipe = ::popen(bounded.c_str(), "r");
  if (pipe == nullptr) {
    return result;
  }
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) {
    result.output += buffer.data();
  }
  const int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

inline std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return out + "'";
}

// A temporary directory, removed with its contents.
class temp_dir {
 public:
  explicit temp_dir(const std::string& name) {
    std::string pattern = (std::filesystem::temp_directory_path() / (name + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    path_ = pattern;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

struct etcd_tls {
  std::string ca_file;
  std::string cert_file;  // the server's
  std::string key_file;
  bool client_cert_auth = false;
};

class etcd_process {
 public:
  struct options {
    std::optional<etcd_tls> tls;
    std::vector<std::string> extra_args;
    std::string ctl_flags;  // for etcdctl, e.g. a client certificate
  };

  explicit etcd_process(options opts = {})
      : options_(std::move(opts)),
        data_("fezz-etcd-test"),
        client_port_(free_port()),
        peer_port_(free_port()),
        ctl_flags_(options_.ctl_flags) {
    start();
  }
  etcd_process(const etcd_process&) = delete;
  etcd_process& operator=(const etcd_process&) = delete;
  ~etcd_process() { stop(); }

  std::string scheme() const { return options_.tls ? "https" : "http"; }
  std::string endpoint() const { return scheme() + "://127.0.0.1:" + std::to_string(client_port_); }
  int client_port() const noexcept { return client_port_; }
  pid_t pid() const noexcept { return pid_; }
  bool running() const noexcept { return pid_ > 0; }

  // Starts etcd (again, on the same data and ports) and waits until it answers.
  void start() {
    if (pid_ > 0) {
      return;
    }
    const std::string client = endpoint();
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    std::vector<std::string> args{"/usr/bin/etcd",
                                  "--name=fezz-test",
                                  "--data-dir=" + (data_.path() / "data").string(),
                                  "--listen-client-urls=" + client,
                                  "--advertise-client-urls=" + client,
                                  "--listen-peer-urls=" + peer,
                                  "--initial-advertise-peer-urls=" + peer,
                                  "--initial-cluster=fezz-test=" + peer,
                                  "--log-level=warn",
                                  "--logger=zap"};
    if (options_.tls) {
      args.push_back("--cert-file=" + options_.tls->cert_file);
      args.push_back("--key-file=" + options_.tls->key_file);
      args.push_back("--trusted-ca-file=" + options_.tls->ca_file);
      if (options_.tls->client_cert_auth) {
        args.push_back("--client-cert-auth");
      }
    }
    for (const auto& a : options_.extra_args) {
      args.push_back(a);
    }
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    const std::string log = (data_.path() / "etcd.log").string();
    const pid_t parent = ::getpid();
    const pid_t child = ::fork();
    if (child < 0) {
      throw std::runtime_error("fork failed");
    }
    if (child == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) {
        ::_exit(127);
      }
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    pid_ = child;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (ctl("endpoint health", 5).status == 0) {
        return;
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("etcd exited at start; its log:\n" + read_log());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    stop();
    throw std::runtime_error("etcd did not become healthy in 20 s; its log:\n" + read_log());
  }

  // SIGTERM, then SIGKILL after 5 s; waits for the process either way.
  void stop() {
    if (pid_ <= 0) {
      return;
    }
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
  }

  // Extra etcdctl flags: credentials and certificates for a secured etcd.
  void set_ctl_flags(std::string flags) { ctl_flags_ = std::move(flags); }

  // Runs etcdctl against this etcd.
  command_result ctl(const std::string& arguments, int timeout_seconds = 15) const {
    std::string command = "env ETCDCTL_API=3 /usr/bin/etcdctl --endpoints=" + endpoint() +
                          " --dial-timeout=2s --command-timeout=5s";
    if (options_.tls) {
      command += " --cacert=" + options_.tls->ca_file;
    }
    if (!ctl_flags_.empty()) {
      command += " " + ctl_flags_;
    }
    return run_command(command + " " + arguments, timeout_seconds);
  }

  // etcdctl that must succeed; returns its output.
  std::string must_ctl(const std::string& arguments) const {
    auto result = ctl(arguments);
    if (result.status != 0) {
      throw std::runtime_error("etcdctl " + arguments + " failed (" +
                               std::to_string(result.status) + "): " + result.output);
    }
    return result.output;
  }

  std::string read_log() const {
    return run_command("tail -c 3000 " + (data_.path() / "etcd.log").string()).output;
  }

 private:
  options options_;
  temp_dir data_;
  int client_port_;
  int peer_port_;
  pid_t pid_ = -1;
  std::string ctl_flags_;
};

}  // namespace fezz::test
