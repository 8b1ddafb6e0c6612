// Live limits (issue 13): PUT / DELETE /tenants/<name>/limits. The running
// config is the file's snapshot with the overrides on top (the fleet's, from
// the backend, then this instance's own); the file stays the source of truth.
#include <spdlog/spdlog.h>

#include <optional>
#include <string>
#include <vector>

#include "config/diff.h"
#include "config/overrides.h"
#include "proxy/base/logging.h"
#include "proxy/fleet_limits.h"
#include "proxy/server.h"

namespace keyfence::proxy {

namespace {

std::string ErrorJson(std::string_view message) {
  std::string j = "{\"ok\":false,\"errors\":[\"";
  AppendJsonEscaped(j, message.data(), message.size());
  return j + "\"]}";
}

// ?scope=instance (the default) or ?scope=fleet; anything else is refused.
std::optional<bool> FleetScope(std::string_view query) {
  std::optional<bool> fleet = false;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (!pair.starts_with("scope=")) continue;
    const std::string_view v = pair.substr(6);
    if (v == "fleet") {
      fleet = true;
    } else if (v != "instance") {
      return std::nullopt;
    }
  }
  return fleet;
}

}  // namespace

config::Overrides Server::MergedOverrides() const {
  config::Overrides all = fleet_overrides_;
  for (const auto& [app, o] : instance_overrides_) {
    auto [it, inserted] = all.try_emplace(app, o);
    if (!inserted) it->second.Merge(o);
  }
  return all;
}

config::SnapshotPtr Server::Effective(const config::SnapshotPtr& file, uint64_t version) const {
  const config::Overrides all = MergedOverrides();
  if (all.empty()) return file;
  return config::WithOverrides(*file, all, version);
}

void Server::KeepOverrides(const config::Snapshot& old_file, const config::Snapshot& new_file) {
  for (auto it = instance_overrides_.begin(); it != instance_overrides_.end();) {
    const config::Tenant* before = old_file.FindTenant(it->first);
    const config::Tenant* after = new_file.FindTenant(it->first);
    // Kept unless the file now sets what the override overrides (or the tenant is gone):
    // a reload that changes something else (another limit, the deny list) keeps it.
    if (before != nullptr && after != nullptr && !it->second.Touches(before->limits, after->limits)) {
      ++it;
      continue;
    }
    spdlog::warn("config reload: the live limits of tenant {} are dropped: {}", it->first,
                 after == nullptr ? "it is gone from the file"
                                  : "the file changed the limits they override");
    it = instance_overrides_.erase(it);
  }
}

void Server::PublishEffective(const std::string& why) {
  config::SnapshotPtr next = Effective(file_snapshot_, next_version_++);
  if (next == file_snapshot_) {  // no overrides left: the file's snapshot, renumbered
    auto copy = std::make_shared<config::Snapshot>(*file_snapshot_);
    copy->version = next_version_ - 1;
    next = copy;
  }
  const config::ChangeSummary change = config::Describe(*snapshot_, *next);
  acl_.Apply(next, AclNodes(*next));  // allow_scripts shapes the tenants' backend users
  LogEvent(spdlog::level::info, "limits changed live",
           {{"why", why}, {"version", std::to_string(next->version)}, {"hash", next->hash},
            {"changes", change.ToString()}});
  metrics_->SetConfigVersion(next->version);
  Publish(next);
}

std::pair<int, std::string> Server::TenantLimits(bool put, std::string_view tenant,
                                                 std::string_view body, std::string_view query) {
  // Changing limits needs an operator's token: without one, anyone who reaches the
  // admin port (a sidecar's is on the pod IP) could raise a tenant's limits.
  if (snapshot_->admin.token.empty()) {
    return {403, ErrorJson("set admin.token to change limits over the admin API")};
  }
  const std::optional<bool> scope = FleetScope(query);
  if (!scope) return {400, ErrorJson("scope must be instance or fleet")};
  const bool fleet = *scope;
  const std::string app(tenant);
  // A fleet override of a tenant this file no longer has can still be deleted.
  const bool known = file_snapshot_->FindTenant(tenant) != nullptr;
  if (!known && !(fleet && !put && config::IsValidName(app))) {
    return {404, ErrorJson("no tenant '" + std::string(tenant) + "' in the config")};
  }
  if (!put) {
    if (fleet && (!fleet_ || !fleet_->Clear(app))) {
      return {503, ErrorJson("the backend did not take the change of the fleet override")};
    }
    config::Overrides& from = fleet ? fleet_overrides_ : instance_overrides_;
    const bool had = from.erase(app) > 0;
    if (had) PublishEffective((fleet ? "fleet override cleared: " : "override cleared: ") + app);
    return {200, "{\"ok\":true,\"cleared\":" + std::string(had ? "true" : "false") +
                     ",\"version\":" + std::to_string(snapshot_->version) + "}"};
  }
  std::vector<config::Diagnostic> errors;
  auto parsed = config::LimitsOverride::Parse(body, "request", &errors);
  if (!parsed) {
    std::string j = "{\"ok\":false,\"errors\":[";
    for (size_t i = 0; i < errors.size(); ++i) {
      const std::string e = errors[i].ToString();
      j += i ? ",\"" : "\"";
      AppendJsonEscaped(j, e.data(), e.size());
      j += "\"";
    }
    return {400, j + "]}"};
  }
  config::Overrides& into = fleet ? fleet_overrides_ : instance_overrides_;
  std::optional<config::LimitsOverride> before;
  if (auto b = into.find(app); b != into.end()) before = b->second;
  auto [it, inserted] = into.try_emplace(app, *parsed);
  if (!inserted) it->second.Merge(*parsed);
  if (fleet && (!fleet_ || !fleet_->Put(app, it->second.ToJson()))) {
    // Nothing half-done: the fleet did not get it, neither do we (the old one stays).
    if (before) {
      it->second = *before;
    } else {
      into.erase(app);
    }
    return {503, ErrorJson("the backend did not take the fleet override")};
  }
  PublishEffective((fleet ? "fleet override: " : "override: ") + app + " " + parsed->ToJson());
  const config::Tenant* t = snapshot_->FindTenant(app);
  return {200, "{\"ok\":true,\"version\":" + std::to_string(snapshot_->version) +
                   ",\"scope\":\"" + (fleet ? "fleet" : "instance") + "\",\"override\":" +
                   it->second.ToJson() + ",\"drift\":" +
                   it->second.DriftJson(file_snapshot_->FindTenant(app)->limits, t->limits) + "}"};
}

void Server::OnFleetOverrides(config::Overrides fleet) {
  // The backend's copy is the fleet's truth: replaced whole, applied if it differs.
  std::string before, after;  // compared as text: LimitsOverride has no ==
  for (const auto& [app, o] : fleet_overrides_) before += app + o.ToJson();
  for (const auto& [app, o] : fleet) after += app + o.ToJson();
  if (before == after) return;
  fleet_overrides_ = std::move(fleet);  // tenants this file lacks are left out when applied
  PublishEffective("fleet overrides from the backend");
}

std::string Server::ConfigJson() {
  config::SnapshotPtr running;
  {
    std::lock_guard<std::mutex> l(snapshot_mu_);
    running = snapshot_;
  }
  std::string j = config::ToJson(*running);
  j.pop_back();  // the closing brace: the file's identity and the drift follow
  auto layer = [](const config::Overrides& o) {
    std::string s = "{";
    for (const auto& [app, x] : o) {
      s += s.size() > 1 ? ",\"" : "\"";
      AppendJsonEscaped(s, app.data(), app.size());
      s += "\":" + x.ToJson();
    }
    return s + "}";
  };
  return j + ",\"file_hash\":\"" + file_snapshot_->hash + "\",\"drift\":" + DriftJson() +
         ",\"overrides\":{\"instance\":" + layer(instance_overrides_) +
         ",\"fleet\":" + layer(fleet_overrides_) + "}}";
}

std::string Server::DriftJson() const {
  return config::DriftJson(*file_snapshot_, *snapshot_, MergedOverrides());
}

}  // namespace keyfence::proxy
