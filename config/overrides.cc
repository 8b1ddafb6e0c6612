#include "config/overrides.h"

#include <string>
#include <utility>

#include "config/limit_text.h"
#include "config/spec.h"

namespace keyfence::config {

namespace {

std::string Value(auto v) { return internal::LimitText(v, true); }  // enums quoted

}  // namespace

std::optional<LimitsOverride> LimitsOverride::Parse(std::string_view text, const std::string& name,
                                                    std::vector<Diagnostic>* errors) {
  internal::Diagnostics diags(name);
  auto spec = std::make_shared<internal::LimitsSpec>();
  const bool ok = internal::ParseLimitsYaml(text, "limits", spec.get(), &diags);
  if (!ok) {
    *errors = diags.Take();
    return std::nullopt;
  }
  LimitsOverride o;
  o.spec_ = std::move(spec);
  return o;
}

Limits LimitsOverride::ApplyTo(Limits base) const {
  return spec_ ? spec_->ApplyTo(base) : base;
}

void LimitsOverride::Merge(const LimitsOverride& newer) {
  if (!newer.spec_) return;
  auto merged = std::make_shared<internal::LimitsSpec>(spec_ ? *spec_ : internal::LimitsSpec{});
#define KF_MERGE(f) \
  if (newer.spec_->f) merged->f = newer.spec_->f;
  KF_CONFIG_LIMIT_FIELDS(KF_MERGE)
#undef KF_MERGE
  spec_ = std::move(merged);
}

std::string LimitsOverride::ToJson() const {
  std::string out = "{";
  if (spec_) {
#define KF_FIELD(f)                                              \
  if (spec_->f) {                                                \
    if (out.size() > 1) out += ',';                              \
    out += "\"" #f "\":" + Value(*spec_->f);                     \
  }
    KF_CONFIG_LIMIT_FIELDS(KF_FIELD)
#undef KF_FIELD
  }
  return out + "}";
}

std::vector<std::string> LimitsOverride::Fields() const {
  std::vector<std::string> out;
  if (!spec_) return out;
#define KF_NAME(f) \
  if (spec_->f) out.emplace_back(#f);
  KF_CONFIG_LIMIT_FIELDS(KF_NAME)
#undef KF_NAME
  return out;
}

SnapshotPtr WithOverrides(const Snapshot& file, const Overrides& overrides, uint64_t version) {
  auto s = std::make_shared<Snapshot>(file);
  s->version = version;
  for (Tenant& t : s->tenants) {
    auto it = overrides.find(t.app);
    if (it != overrides.end()) t.limits = it->second.ApplyTo(t.limits);
  }
  s->hash = IdentityHash(*s);
  return s;
}

bool LimitsOverride::Touches(const Limits& a, const Limits& b) const {
  if (!spec_) return false;
#define KF_TOUCH(f) \
  if (spec_->f && a.f != b.f) return true;
  KF_CONFIG_LIMIT_FIELDS(KF_TOUCH)
#undef KF_TOUCH
  return false;
}

std::string LimitsOverride::DriftJson(const Limits& file, const Limits& live) const {
  std::string out = "{";
  if (spec_) {
#define KF_DRIFT(f)                                                                      \
  if (spec_->f) {                                                                        \
    if (out.size() > 1) out += ',';                                                      \
    out += "\"" #f "\":{\"file\":" + Value(file.f) + ",\"live\":" + Value(live.f) + "}"; \
  }
    KF_CONFIG_LIMIT_FIELDS(KF_DRIFT)
#undef KF_DRIFT
  }
  return out + "}";
}

std::string DriftJson(const Snapshot& file, const Snapshot& running, const Overrides& overrides) {
  std::string out = "{";
  for (const auto& [app, o] : overrides) {
    const Tenant* f = file.FindTenant(app);
    const Tenant* r = running.FindTenant(app);
    if (f == nullptr || r == nullptr) continue;
    if (out.size() > 1) out += ',';
    out += "\"" + app + "\":" + o.DriftJson(f->limits, r->limits);  // app: a checked name
  }
  return out + "}";
}

}  // namespace keyfence::config
