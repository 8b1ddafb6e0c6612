#include "proxy/accounting/store.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "protocol/slot.h"
#include "proxy/backend/control_link.h"

namespace keyfence::proxy::accounting {

namespace {

std::optional<ControlReply> Command(const config::Endpoint* node, const config::Backend& be,
                                    std::initializer_list<std::string_view> args) {
  if (node == nullptr) return std::nullopt;
  std::unique_ptr<ControlLink> link = ControlLink::Open(*node, be, "accounting store");
  if (!link) return std::nullopt;
  return link->Command(args);
}

}  // namespace

ReportStore::ReportStore(const config::Snapshot& snap, SlotMapPtr map)
    : backend_(snap.backend), prefix_(snap.cluster_name + "@__keyfence:accounting:"),
      map_(std::move(map)) {}

std::string ReportStore::Key(std::string_view name) const { return prefix_ + std::string(name); }

const config::Endpoint* ReportStore::NodeFor(const std::string& key) const {
  if (backend_.mode == config::BackendMode::kStandalone) {
    return backend_.nodes.empty() ? nullptr : &backend_.nodes.front();
  }
  if (backend_.mode == config::BackendMode::kSentinel) {  // the master the sentinels named
    return map_ && !map_->masters.empty() ? &map_->masters.front() : nullptr;
  }
  if (!map_) return nullptr;
  const int16_t owner = map_->owner[protocol::KeySlot(key)];
  return owner < 0 ? nullptr : &map_->masters[static_cast<size_t>(owner)];
}

bool ReportStore::Put(std::string_view name, const std::string& value) {
  const std::string key = Key(name);
  auto r = Command(NodeFor(key), backend_, {"SET", key, value});
  const bool ok = r && r->is_status("OK");
  if (!ok) spdlog::warn("accounting: cannot store {} in the backend", key);
  return ok;
}

std::optional<std::string> ReportStore::Get(std::string_view name) {
  const std::string key = Key(name);
  auto r = Command(NodeFor(key), backend_, {"GET", key});
  if (!r || !r->is_string()) return std::nullopt;
  return std::move(r->str);
}

bool ReportStore::Claim(std::string_view name, std::string_view owner, int ttl_s) {
  const std::string key = Key(name);
  const std::string ttl = std::to_string(ttl_s);
  auto r = Command(NodeFor(key), backend_, {"SET", key, owner, "NX", "EX", ttl});
  return r && r->is_status("OK");
}

void ReportStore::Release(std::string_view name, std::string_view owner) {
  static constexpr std::string_view kCompareAndDelete =
      "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
      "return 0";
  const std::string key = Key(name);
  Command(NodeFor(key), backend_, {"EVAL", kCompareAndDelete, "1", key, owner});
}

bool ReportStore::SaveFile(const std::string& dir, std::string_view name,
                           const std::string& value) {
  if (dir.empty()) return false;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string path = dir + "/" + std::string(name) + ".json";
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << value;
    if (!out.flush()) {
      spdlog::warn("accounting: cannot write {}", tmp);
      return false;
    }
  }
  std::filesystem::rename(tmp, path, ec);  // atomic: a reader sees the old or the new file
  if (ec) spdlog::warn("accounting: cannot write {}: {}", path, ec.message());
  return !ec;
}

std::optional<std::string> ReportStore::LoadFile(const std::string& dir, std::string_view name) {
  if (dir.empty()) return std::nullopt;
  std::ifstream in(dir + "/" + std::string(name) + ".json", std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace keyfence::proxy::accounting
