#pragma once

// From the control plane to the routes: each store change routes, re-routes or
// unroutes the one function it names, in the working snapshot of the routing
// source (so a change costs what it touches, not the size of the store), and
// configures or retires that function's registry slot.
//
// A function is routed when its entry serves this node, the binary has code
// for its id, and its path is a valid route pattern. When several routed
// functions claim the same method and pattern shape (the same paths, whatever
// their parameters are named), the greatest id holds the route and the others
// wait, configured but unreachable, until it lets go.
//
// A function with several live versions (an entry's "versions") gets a slot per
// version, "<id>@<version>", each configured with its own module; its route leads
// to all of them, with their weights, and dispatch picks one per request.

#include <fezz/context.hpp>
#include <fezz/detail/route_pattern.hpp>
#include <fezz/function.hpp>
#include <fezz/function_store.hpp>
#include <fezz/host/host_state.hpp>
#include <fezz/host/routing.hpp>
#include <fezz/manifest.hpp>
#include <fezz/module.hpp>
#include <fezz/route_table.hpp>

#include <spdlog/logger.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace fezz::host {

class route_publisher {
 public:
  route_publisher(host_state& host, function_store& store) : host_(host), store_(store) {}
  route_publisher(const route_publisher&) = delete;
  route_publisher& operator=(const route_publisher&) = delete;

  // What a function runs with under `entry`: its manifest, the config's
  // environment with the entry's own laid over it, and a logger named after it.
  // With `version`, what that version of it runs with: its module, its name as the version.
  std::shared_ptr<const function_info> info_for(const function_entry& entry,
                                                const function_version* version = nullptr) const {
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
    const module_source* module = entry.module ? &*entry.module : nullptr;
    if (version != nullptr) {
      info->manifest.version = version->name;
      module = &version->module;
    }
    if (module != nullptr) {
      info->module_sha256 = module->sha256;
      // No path: the bytes come from the store, where fezzctl deploy put them.
      info->module_code = [modules = host_.modules, source = *module, id = entry.id(),
                           store = &store_] {
        const auto from_store = [&](std::size_t max_bytes) {
          auto bytes = store->get_module(source.sha256, max_bytes);
          if (!bytes) {
            throw module_error("module " + source.sha256 + " is not in the store");
          }
          return std::move(*bytes);
        };
        return modules->open(source.sha256, source.path, from_store)->make(id);
      };
    }
    return info;
  }

  // One store change.
  void apply(const store_event& event) {
    std::lock_guard lock(mutex_);
    if (event.type == store_event::kind::removed) {
      unroute(event.entry.id());
    } else {
      route_entry(event.entry);
    }
  }

  // The store's entry for `id` as it is now: when code for it was just registered.
  void refresh(std::string_view id) {
    std::lock_guard lock(mutex_);
    if (const auto entry = store_.get(id)) {
      route_entry(*entry);
    } else {
      unroute(id);
    }
  }

  // Drops the slots of versions that have left their entries, once they have unloaded,
  // so /_metrics lists only versions that are live or finishing. The idle reaper calls it.
  void drop_retired_versions() {
    std::lock_guard lock(mutex_);
    std::erase_if(retired_versions_, [&](const std::string& slot_id) {
      if (!host_.registry.find(slot_id)) {
        return true;
      }
      if (!host_.registry.remove_if_idle(slot_id)) {
        return false;
      }
      version_slots_.erase(slot_id);
      return true;
    });
  }

  // Every entry of the store against what is routed now: at start.
  void rebuild() {
    std::lock_guard lock(mutex_);
    std::unordered_set<std::string> listed;
    for (const auto& entry : store_.list()) {
      route_entry(entry);
      listed.insert(entry.id());
    }
    std::vector<std::string> gone;
    for (const auto& [id, routed] : routed_) {
      if (!listed.contains(id)) {
        gone.push_back(id);
      }
    }
    for (const auto& id : gone) {
      unroute(id);
    }
  }

 private:
  struct routed_function {
    std::string method;
    std::string path;                           // as the entry wrote it
    std::string claim;                          // method and pattern shape: what it competes for
    std::shared_ptr<const function_info> info;  // null when it has versions
    std::map<std::string, std::shared_ptr<const function_info>> versions;  // by version name
  };

  // The registry's slot for one version of a function: "<id>@<version>".
  static std::string version_slot_id(std::string_view id, std::string_view version) {
    return std::string(id) + '@' + std::string(version);
  }

  // An unchanged configuration is kept as it was, so its instance stays loaded.
  static std::shared_ptr<const function_info> unchanged_or(
      std::shared_ptr<const function_info> next, const std::shared_ptr<const function_info>& now) {
    if (now && now->manifest == next->manifest && now->env == next->env &&
        now->module_sha256 == next->module_sha256) {
      return now;
    }
    return next;
  }

  void route_entry(const function_entry& entry) {
    const std::string& id = entry.id();
    auto& log = host_.log();
    if (!entry.serves(host_.settings.node())) {
      unroute(id);
      return;
    }
    const auto& m = entry.manifest;
    if (const auto problem = detail::pattern_problem(m.path); !problem.empty()) {
      log.error("not routing '{}': invalid pattern \"{}\": {}", id, m.path, problem);
      unroute(id);
      return;
    }
    if (!is_valid_method(m.method)) {
      log.error("not routing '{}': invalid method \"{}\"", id, m.method);
      unroute(id);
      return;
    }
    const auto it = routed_.find(id);
    routed_function next{m.method, m.path, m.method + ' ' + detail::pattern_shape(m.path), {}, {}};
    routing_target target;
    if (entry.versions.empty()) {
      auto slot = host_.registry.find(id);
      if (!slot && entry.module) {
        slot = host_.registry.add(module_registration(id), nullptr);
        module_only_.insert(id);
      }
      if (!slot || (module_only_.contains(id) && !entry.module)) {
        log.debug("store entry '{}' has no code in this binary", id);
        unroute(id);
        return;
      }
      next.info = unchanged_or(info_for(entry), it != routed_.end() ? it->second.info : nullptr);
      slot->configure(next.info);  // before the route is visible: a load needs the configuration
      target = {slot, next.info, nullptr};
    } else {
      auto split = std::make_shared<version_split>();
      for (const auto& v : entry.versions) {
        const auto slot_id = version_slot_id(id, v.name);
        retired_versions_.erase(slot_id);  // back before its slot was dropped
        auto slot = host_.registry.find(slot_id);
        if (!slot) {
          slot = host_.registry.add(module_registration(slot_id), nullptr);
          version_slots_.insert(slot_id);
        } else if (!version_slots_.contains(slot_id)) {
          log.error("not routing '{}': its version slot '{}' is the id of compiled-in code", id,
                    slot_id);
          unroute(id);
          return;
        }
        std::shared_ptr<const function_info> now;
        if (it != routed_.end() && it->second.versions.contains(v.name)) {
          now = it->second.versions.at(v.name);
        }
        auto info = unchanged_or(info_for(entry, &v), now);
        slot->configure(info);
        next.versions.emplace(v.name, info);
        split->versions.push_back({v.name, v.weight, routing_target{slot, info, nullptr}});
        split->total_weight += v.weight;
      }
      target.versions = std::move(split);
    }
    host_.routing.update([&](routing_snapshot& s) {
      if (it != routed_.end() && it->second.claim != next.claim) {
        let_go(s, id, it->second);
      }
      if (it == routed_.end() || it->second.claim != next.claim) {
        take(s, id, next);
      } else if (it->second.path != next.path && owner(next.claim) == id) {
        s.routes.remove(it->second.method, it->second.path);  // the same shape, written anew
        s.routes.add(fezz::route{next.method, next.path, id});
      }
      s.targets.insert_or_assign(id, std::move(target));
    });
    if (it != routed_.end()) {
      retire_left(id, it->second, next);
    }
    routed_.insert_or_assign(id, std::move(next));
  }

  // Retires what `before` ran and `after` no longer does: the function's own slot when it
  // moved to versions, and each version that left.
  void retire_left(const std::string& id, const routed_function& before,
                   const routed_function& after) {
    if (before.info && !after.info) {
      if (const auto slot = host_.registry.find(id)) {
        slot->retire();
      }
    }
    for (const auto& [name, info] : before.versions) {
      if (!after.versions.contains(name)) {
        retire_version(id, name);
      }
    }
  }

  void retire_version(std::string_view id, std::string_view name) {
    const auto slot_id = version_slot_id(id, name);
    if (const auto slot = host_.registry.find(slot_id)) {
      slot->retire();
      retired_versions_.insert(slot_id);
      host_.log().info("version '{}' of '{}' is no longer routed here", name, id);
    }
  }

  void unroute(std::string_view id) {
    const auto it = routed_.find(std::string(id));
    if (it == routed_.end()) {
      return;
    }
    host_.routing.update([&](routing_snapshot& s) {
      let_go(s, it->first, it->second);
      s.targets.erase(id);
    });
    for (const auto& [name, info] : it->second.versions) {
      retire_version(id, name);
    }
    routed_.erase(it);
    if (const auto slot = host_.registry.find(id)) {
      slot->retire();
      host_.log().info("'{}' is no longer routed here", id);
    }
  }

  // The registry's slot for a function that exists only as a module: the code comes
  // from each configuration's module_code; without one, a load fails.
  static function_registration module_registration(const std::string& id) {
    auto name = std::make_shared<const std::string>(id);
    return {manifest{.id = *name}, [name]() -> std::unique_ptr<detail::function_instance> {
              throw module_error("'" + *name + "' has no module configured");
            }};
  }

  const std::string& owner(const std::string& claim) const { return *claims_.at(claim).rbegin(); }

  // `id` claims its route; it holds the route if its id is the greatest claimant.
  void take(routing_snapshot& s, const std::string& id, const routed_function& f) {
    auto& claimants = claims_[f.claim];
    if (!claimants.empty() && *claimants.rbegin() < id) {
      const routed_function& holder = routed_.at(*claimants.rbegin());
      s.routes.remove(holder.method, holder.path);
    }
    claimants.insert(id);
    if (*claimants.rbegin() == id) {
      s.routes.add(fezz::route{f.method, f.path, id});
    }
  }

  // `id` lets its claim go; the route goes to the next claimant, or away.
  void let_go(routing_snapshot& s, const std::string& id, const routed_function& f) {
    auto& claimants = claims_[f.claim];
    const bool held = *claimants.rbegin() == id;
    claimants.erase(id);
    if (held) {
      s.routes.remove(f.method, f.path);
    }
    if (claimants.empty()) {
      claims_.erase(f.claim);
    } else if (held) {
      const std::string& heir_id = *claimants.rbegin();
      const routed_function& heir = routed_.at(heir_id);
      s.routes.add(fezz::route{heir.method, heir.path, heir_id});
    }
  }

  host_state& host_;
  function_store& store_;
  std::mutex mutex_;  // one change at a time; guards what is below
  std::unordered_map<std::string, routed_function> routed_;
  std::map<std::string, std::set<std::string>> claims_;  // claim -> the ids that make it
  std::set<std::string> module_only_;       // ids whose slot this publisher added for a module
  std::set<std::string> version_slots_;     // the "<id>@<version>" slots this publisher added
  std::set<std::string> retired_versions_;  // of those, the ones no entry names now
};

}  // namespace fezz::host
