#pragma once

// From the control plane to the routes: reads the store's entries, turns the
// ones this node serves and has code for into a routing snapshot, configures
// their registry slots, and publishes the snapshot for the connections.

#include <fezz/context.hpp>
#include <fezz/function_store.hpp>
#include <fezz/host/host_state.hpp>
#include <fezz/host/routing.hpp>
#include <fezz/route_table.hpp>

#include <spdlog/logger.h>

#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

namespace fezz::host {

class route_publisher {
 public:
  route_publisher(host_state& host, function_store& store) : host_(host), store_(store) {}
  route_publisher(const route_publisher&) = delete;
  route_publisher& operator=(const route_publisher&) = delete;

  // What a function runs with under `entry`: its manifest, the config's
  // environment with the entry's own laid over it, and a logger named after it.
  std::shared_ptr<const function_info> info_for(const function_entry& entry) const {
    auto info = std::make_shared<function_info>();
    info->manifest = entry.manifest;
    info->env.insert(host_.settings.env().begin(), host_.settings.env().end());
    for (const auto& [key, value] : entry.env) {
      info->env.insert_or_assign(key, value);
    }
    const auto& base = host_.settings.logger();
    auto logger =
        std::make_shared<spdlog::logger>(entry.id(), base->sinks().begin(), base->sinks().end());
    logger->set_level(base->level());
    info->logger = std::move(logger);
    return info;
  }

  // Builds a snapshot from every entry of the store and publishes it.
  void rebuild() {
    std::lock_guard lock(mutex_);
    auto next = std::make_shared<routing_snapshot>();
    std::map<std::string, std::shared_ptr<const function_info>, std::less<>> infos;
    auto& log = host_.log();
    for (const auto& entry : store_.list()) {
      if (!entry.serves(host_.settings.node())) {
        continue;
      }
      const auto slot = host_.registry.find(entry.id());
      if (!slot) {
        log.debug("store entry '{}' has no code in this binary", entry.id());
        continue;
      }
      // Keep the configuration object of an unchanged entry, so its instance stays loaded.
      std::shared_ptr<const function_info> info = info_for(entry);
      if (const auto it = infos_.find(entry.id()); it != infos_.end() &&
                                                   it->second->manifest == info->manifest &&
                                                   it->second->env == info->env) {
        info = it->second;
      }
      try {
        next->routes.add(route{entry.manifest.method, entry.manifest.path, entry.id()});
      } catch (const std::invalid_argument& e) {
        log.error("not routing '{}': {}", entry.id(), e.what());
        continue;
      }
      slot->configure(info);
      next->targets.emplace(entry.id(), routing_target{slot, info});
      infos.emplace(entry.id(), std::move(info));
    }
    for (const auto& [id, info] : infos_) {
      if (!infos.contains(id)) {
        if (const auto slot = host_.registry.find(id)) {
          slot->retire();
          log.info("'{}' is no longer routed here", id);
        }
      }
    }
    infos_ = std::move(infos);
    host_.routing.publish(std::move(next));
  }

 private:
  host_state& host_;
  function_store& store_;
  std::mutex mutex_;  // one rebuild at a time
  std::map<std::string, std::shared_ptr<const function_info>, std::less<>> infos_;
};

}  // namespace fezz::host
