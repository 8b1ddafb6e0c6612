#include "proxy/accounting/store.h"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "protocol/slot.h"
#include "proxy/backend/admin_link.h"

namespace keyfence::proxy::accounting {

namespace {

using ReplyPtr = std::unique_ptr<redisReply, void (*)(void*)>;

ReplyPtr Command(const config::Endpoint* node, const config::Backend& be, int argc,
                 const char** argv, const size_t* lens) {
  if (node == nullptr) return {nullptr, freeReplyObject};
  AdminLink link = ConnectAdmin(*node, be, "accounting store");
  if (!link) return {nullptr, freeReplyObject};
  return {static_cast<redisReply*>(redisCommandArgv(link.get(), argc, argv, lens)),
          freeReplyObject};
}

}  // namespace

ReportStore::ReportStore(const config::Snapshot& snap, SlotMapPtr map)
    : backend_(snap.backend), prefix_(snap.cluster_name + "@__keyfence:accounting:"),
      map_(std::move(map)) {}

std::string ReportStore::Key(std::string_view name) const { return prefix_ + std::string(name); }

const config::Endpoint* ReportStore::NodeFor(const std::string& key) const {
  if (backend_.mode != config::BackendMode::kCluster) {
    return backend_.nodes.empty() ? nullptr : &backend_.nodes.front();
  }
  if (!map_) return nullptr;
  const int16_t owner = map_->owner[protocol::KeySlot(key)];
  return owner < 0 ? nullptr : &map_->masters[static_cast<size_t>(owner)];
}

bool ReportStore::Put(std::string_view name, const std::string& value) {
  const std::string key = Key(name);
  const char* argv[] = {"SET", key.c_str(), value.data()};
  const size_t lens[] = {3, key.size(), value.size()};
  ReplyPtr r = Command(NodeFor(key), backend_, 3, argv, lens);
  const bool ok = r && r->type == REDIS_REPLY_STATUS;
  if (!ok) spdlog::warn("accounting: cannot store {} in the backend", key);
  return ok;
}

std::optional<std::string> ReportStore::Get(std::string_view name) {
  const std::string key = Key(name);
  const char* argv[] = {"GET", key.c_str()};
  const size_t lens[] = {3, key.size()};
  ReplyPtr r = Command(NodeFor(key), backend_, 2, argv, lens);
  if (!r || r->type != REDIS_REPLY_STRING) return std::nullopt;
  return std::string(r->str, r->len);
}

bool ReportStore::Claim(std::string_view name, std::string_view owner, int ttl_s) {
  const std::string key = Key(name);
  const std::string ttl = std::to_string(ttl_s);
  const char* argv[] = {"SET", key.c_str(), owner.data(), "NX", "EX", ttl.c_str()};
  const size_t lens[] = {3, key.size(), owner.size(), 2, 2, ttl.size()};
  ReplyPtr r = Command(NodeFor(key), backend_, 6, argv, lens);
  return r && r->type == REDIS_REPLY_STATUS;
}

void ReportStore::Release(std::string_view name, std::string_view owner) {
  static constexpr std::string_view kCompareAndDelete =
      "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
      "return 0";
  const std::string key = Key(name);
  const char* argv[] = {"EVAL", kCompareAndDelete.data(), "1", key.c_str(), owner.data()};
  const size_t lens[] = {4, kCompareAndDelete.size(), 1, key.size(), owner.size()};
  Command(NodeFor(key), backend_, 5, argv, lens);
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
