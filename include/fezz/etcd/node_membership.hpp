#pragma once

// node_membership: an etcd_store's own node, held on a lease, on the store's thread.
//   - join grants a lease (lease_ttl) and creates <prefix>nodes/<name> on it only if no
//     live node holds the name;
//   - a keep-alive runs every TTL/3 (sooner after a failure); when etcd says the lease is
//     gone, the node registers again on a new one;
//   - set_state rewrites the record only while the key is still on this node's lease;
//   - leave revokes the lease, which deletes the key.

#include <fezz/detail/async.hpp>
#include <fezz/etcd/gateway_client.hpp>
#include <fezz/etcd/gateway_requests.hpp>
#include <fezz/etcd/gateway_responses.hpp>
#include <fezz/etcd/store_cache.hpp>
#include <fezz/etcd/store_calls.hpp>
#include <fezz/function_store.hpp>
#include <fezz/store_format.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace fezz::etcd {

struct membership_options {
  std::string prefix;  // the node's key is <prefix>nodes/<name>
  std::chrono::seconds lease_ttl{10};
  std::shared_ptr<spdlog::logger> logger;
};

class node_membership {
 public:
  // `cache` tells when the store is stopping.
  node_membership(boost::asio::any_io_executor executor, gateway_client& client,
                  const store_cache& cache, membership_options options)
      : options_(std::move(options)),
        logger_(options_.logger),
        executor_(executor),
        client_(client),
        cache_(cache),
        keepalive_timer_(std::move(executor)) {}

  node_membership(const node_membership&) = delete;
  node_membership& operator=(const node_membership&) = delete;

  // Each returns the revision of its change (0: none); failures throw store_error.

  boost::asio::awaitable<std::int64_t> join(node_record node) {
    if (member_) {
      throw store_error("cannot join as node '" + node.name + "': this store already joined as '" +
                        member_->name + "'");
    }
    member_ = node;  // claimed now, so a concurrent join is refused
    const auto membership = ++membership_;
    std::optional<registration> registered;
    std::optional<store_error> failure;
    try {
      registered = co_await register_node(node);
    } catch (const store_error& e) {
      failure = e;
    }
    if (failure) {
      if (membership_ == membership) {
        member_.reset();
      }
      throw *failure;
    }
    lease_ = registered->lease;
    boost::asio::co_spawn(executor_, keep_alive(membership), boost::asio::detached);
    co_return registered->revision;
  }

  boost::asio::awaitable<std::int64_t> set_state(std::string state) {
    if (!member_) {
      throw store_error("cannot set the node state: this store has not joined");
    }
    member_->state = state;
    const auto membership = membership_;
    const auto key = node_key(options_.prefix, member_->name);
    auto answer =
        co_await call(client_, paths::txn, put_if_lease_request(key, to_json(*member_), lease_),
                      parse_txn_response);
    const auto outcome = value_or_throw(std::move(answer), "set the node state");
    if (outcome.succeeded || membership_ != membership || !member_) {
      co_return outcome.revision;
    }
    logger_->warn("etcd_store: node '{}' no longer holds its key; registering again",
                  member_->name);
    co_return co_await register_again(membership);
  }

  boost::asio::awaitable<std::int64_t> leave() {
    if (!member_) {
      co_return 0;
    }
    const auto lease = lease_;
    const auto name = member_->name;
    member_.reset();
    lease_ = 0;
    ++membership_;
    keepalive_timer_.cancel();
    auto answer = co_await revoke(lease);
    if (failed(answer) && std::get<1>(answer).code == grpc_code::not_found) {
      co_return 0;  // the lease was already gone, and the key with it
    }
    const auto revoked = value_or_throw(std::move(answer), "leave as node '" + name + "'");
    logger_->info("etcd_store: node '{}' left (lease {} revoked)", name, lease);
    co_return revoked.revision;
  }

  // On the store's thread, once the cache is stopping: ends the keep-alive. The lease is
  // not revoked: the key goes one TTL later.
  void stop() {
    keepalive_timer_.cancel();
    ++membership_;
  }

 private:
  template <class T>
  using awaitable = boost::asio::awaitable<T>;

  struct registration {
    std::int64_t revision = 0;
    std::int64_t lease = 0;
  };

  // Grants a lease and creates the node's key on it; throws store_error if a live node
  // holds the name.
  awaitable<registration> register_node(node_record node) {
    auto granted =
        co_await call(client_, paths::lease_grant, lease_grant_request(options_.lease_ttl.count()),
                      parse_lease_response);
    const auto lease = value_or_throw(std::move(granted), "join as node '" + node.name + "'");
    if (lease.ttl <= 0 || lease.id == 0) {
      throw store_error("cannot join as node '" + node.name + "': etcd granted no lease");
    }
    const auto key = node_key(options_.prefix, node.name);
    auto created =
        co_await call(client_, paths::txn, create_if_absent_request(key, to_json(node), lease.id),
                      parse_txn_response);
    if (failed(created) || !std::get<0>(created).succeeded) {
      co_await revoke(lease.id);
      if (failed(created)) {
        throw store_error("cannot join as node '" + node.name +
                          "': " + one_line(std::get<1>(created).message));
      }
      const auto& holder = std::get<0>(created).kvs;
      throw store_error("cannot join as node '" + node.name +
                        "': a live node of that name exists (" + key + " is held by lease " +
                        (holder.empty() ? std::string("?") : std::to_string(holder[0].lease)) +
                        ")");
    }
    logger_->info("etcd_store: joined as node '{}' on lease {} (TTL {} s)", node.name, lease.id,
                  lease.ttl);
    co_return registration{std::get<0>(created).revision, lease.id};
  }

  awaitable<gateway_result<empty_response>> revoke(std::int64_t lease) {
    co_return co_await call(client_, paths::lease_revoke, lease_revoke_request(lease),
                            parse_empty_response);
  }

  // After a lost lease: registers again, unless the membership ended meanwhile.
  awaitable<std::int64_t> register_again(std::uint64_t membership) {
    auto registered = co_await register_node(*member_);
    if (membership_ != membership || !member_) {
      co_await revoke(registered.lease);  // left while registering
      co_return 0;
    }
    lease_ = registered.lease;
    co_return registered.revision;
  }

  // Keeps the lease alive every TTL/3; registers again when etcd says the lease is gone.
  awaitable<void> keep_alive(std::uint64_t membership) {
    const auto period =
        std::chrono::duration_cast<std::chrono::milliseconds>(options_.lease_ttl) / 3;
    const auto retry = std::max(period / 3, std::chrono::milliseconds(200));
    auto delay = period;
    bool failing = false;
    while (!cache_.stopping() && membership_ == membership) {
      keepalive_timer_.expires_after(delay);
      auto [waited] = co_await keepalive_timer_.async_wait(fezz::detail::nothrow_awaitable);
      (void)waited;
      if (cache_.stopping() || membership_ != membership || !member_) {
        break;
      }
      const auto lease = lease_;
      auto answer = co_await call(client_, paths::lease_keepalive, lease_keepalive_request(lease),
                                  parse_lease_response);
      if (membership_ != membership || !member_) {
        break;
      }
      if (failed(answer)) {
        // Once per outage at warn level, then quietly: etcd may stay away a while.
        logger_->log(failing ? spdlog::level::debug : spdlog::level::warn,
                     "etcd_store: keeping lease {} alive failed: {}", lease,
                     one_line(std::get<1>(answer).message));
        failing = true;
        delay = retry;  // the lease may still be saved: try again sooner
        continue;
      }
      failing = false;
      delay = period;
      if (std::get<0>(answer).ttl > 0 || lease != lease_) {
        continue;
      }
      logger_->warn("etcd_store: lease {} of node '{}' is gone; registering again", lease,
                    member_->name);
      try {
        co_await register_again(membership);
      } catch (const store_error& e) {
        logger_->error("etcd_store: {}", e.what());
        delay = retry;
      }
    }
  }

  const membership_options options_;
  const std::shared_ptr<spdlog::logger> logger_;
  boost::asio::any_io_executor executor_;
  gateway_client& client_;
  const store_cache& cache_;
  boost::asio::steady_timer keepalive_timer_;
  std::optional<node_record> member_;  // the node this store joined as
  std::int64_t lease_ = 0;
  std::uint64_t membership_ = 0;  // bumped on join and leave: ends the old keep-alive loop
};

}  // namespace fezz::etcd
