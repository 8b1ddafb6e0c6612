// ClientSession in cluster mode (backend.mode: cluster): slot routing through
// the worker's Router, CROSSSLOT where Redis Cluster would say it, multi-key
// commands split by slot (FanOut), transactions pinned to one node.
#include <charconv>

#include <spdlog/spdlog.h>

#include "protocol/error_replies.h"
#include "protocol/glob.h"
#include "protocol/writer.h"
#include "proxy/client_session.h"
#include "proxy/text.h"
#include "proxy/fanout.h"
#include "proxy/worker.h"
#include "tenancy/namespace.h"
#include "tenancy/rewriter.h"

namespace keyfence::proxy {

using protocol::CommandInfo;
using tenancy::ReplyRule;
using tenancy::Route;

namespace {
bool Splittable(std::string_view name, int* step) {
  *step = 1;
  if (name == "mset") {
    *step = 2;
    return true;
  }
  return name == "mget" || name == "del" || name == "unlink" || name == "exists" ||
         name == "touch";
}
}  // namespace

int ClientSession::SlotOfRefs(bool* cross) const {
  *cross = false;
  int slot = Router::kAnySlot;
  for (const tenancy::NameRef& r : refs_) {
    if (r.kind != tenancy::RefKind::kKey && r.kind != tenancy::RefKind::kShardChannel) continue;
    int s = tenancy::BackendKeySlot(prefix_crc_, args_[r.pos]);
    if (slot == Router::kAnySlot) {
      slot = s;
    } else if (s != slot) {
      *cross = true;
    }
  }
  return slot;
}

bool ClientSession::DispatchCluster(const CommandInfo& cmd, const tenancy::Rule& rule,
                                    Route route) {
  const std::string_view name = cmd.name;
  bool cross = false;
  int slot = SlotOfRefs(&cross);
  if (cross && !cmulti_) {
    int step;
    if (Splittable(name, &step) && !in_multi_ && mode_ == Mode::kNormal) {
      SplitBySlot(cmd, step);
      return true;
    }
    ReplyError(protocol::errors::kCrossSlot);
    return true;
  }
  if (route == Route::kShared && !dedicated_ && !cmulti_ && name != "multi" &&
      name != "exec" && name != "discard") {
    // The hot path: rewritten straight into the router's buffer for this request.
    Slot& s = NewSlot(rule.reply);
    tenancy::WriteRequest(args_, refs_, tenant_->prefix, worker_.router().Prepare());
    worker_.router().Commit(slot, this, s.seq, proto_, !rule.scripts,
                            (cmd.flags & protocol::kCmdReadonly) != 0);
    return true;
  }
  scratch_.clear();
  tenancy::WriteRequest(args_, refs_, tenant_->prefix, scratch_);

  // Transactions: MULTI is answered here and the queued commands are kept, so
  // that EXEC can send MULTI ... EXEC to the one node that owns their slot.
  if (cmulti_ || name == "multi" || name == "exec" || name == "discard") {
    return ClusterTransaction(name, slot, cross, rule);
  }
  // Dedicated connections (WATCH, blocking, subscribers) go to the slot's node.
  if (!dedicated_) {
    if (inflight() > 0) return false;
    config::Endpoint ep;
    if (!worker_.EndpointForSlot(slot, &ep)) {
      worker_.RequestTopologyRefresh();
      ReplyError("CLUSTERDOWN keyfence: the cluster topology is not known yet");
      return true;
    }
    dedicated_ = worker_.TakeDedicated(proto_, &ep);
    dedicated_slot_ = slot;
    if (route == Route::kPubSub) {
      dedicated_->set_unsolicited(this);
      mode_ = Mode::kPubSub;
    } else {
      mode_ = Mode::kDedicated;
    }
  } else if (slot != Router::kAnySlot && dedicated_slot_ != Router::kAnySlot &&
             slot != dedicated_slot_ && mode_ != Mode::kPubSub) {
    ReplyError(protocol::errors::kCrossSlot);
    return true;
  }
  if (slot != Router::kAnySlot && dedicated_slot_ == Router::kAnySlot) dedicated_slot_ = slot;
  if (!dedicated_->Available()) {
    ReplyError(dedicated_->down_error());
    dedicated_.reset();
    mode_ = Mode::kNormal;
    watching_ = blocking_ = false;
    return true;
  }
  if (route == Route::kBlocking) blocking_ = true;
  if (name == "watch") watching_ = true;
  if (name == "unwatch") watching_ = false;
  dedicated_->out().append(scratch_);
  dedicated_->MarkDirty();
  if (route == Route::kPubSub) return true;
  Slot& s = NewSlot(rule.reply);
  dedicated_->Push(this, s.seq);
  return true;
}

bool ClientSession::ClusterTransaction(std::string_view name, int slot, bool cross,
                                       const tenancy::Rule& rule) {
  if (name == "multi") {
    if (cmulti_) {
      ReplyError("ERR MULTI calls can not be nested");
      return true;
    }
    cmulti_ = true;
    in_multi_ = true;
    multi_error_ = cross;
    multi_rules_.clear();
    cmulti_bytes_.clear();
    cmulti_count_ = 0;
    cmulti_slot_ = dedicated_ ? dedicated_slot_ : Router::kAnySlot;
    ReplySimple("OK");
    return true;
  }
  if (name == "discard") {
    if (!cmulti_) {
      ReplyError("ERR DISCARD without MULTI");
      return true;
    }
    cmulti_ = in_multi_ = multi_error_ = false;
    multi_rules_.clear();
    cmulti_bytes_.clear();
    if (dedicated_ && watching_) {  // DISCARD also forgets WATCHed keys
      watching_ = false;
      protocol::AppendCommand(dedicated_->out(), {"UNWATCH"});
      dedicated_->MarkDirty();
      Slot& s = NewSlot(ReplyRule::kNone);
      dedicated_->Push(this, s.seq);
      return true;
    }
    ReplySimple("OK");
    return true;
  }
  if (name == "exec") {
    if (!cmulti_) {
      ReplyError("ERR EXEC without MULTI");
      return true;
    }
    return ClusterExec();
  }
  // A queued command: validated here, sent at EXEC.
  if (cross || (slot != Router::kAnySlot && cmulti_slot_ != Router::kAnySlot &&
                slot != cmulti_slot_)) {
    multi_error_ = true;
    ReplyError(protocol::errors::kCrossSlot);
    return true;
  }
  if (slot != Router::kAnySlot) cmulti_slot_ = slot;
  cmulti_bytes_.append(scratch_);
  ++cmulti_count_;
  multi_rules_.emplace_back(rule.reply, std::string());
  ReplySimple("QUEUED");
  return true;
}

bool ClientSession::ClusterExec() {
  cmulti_ = in_multi_ = false;
  if (multi_error_) {
    multi_error_ = false;
    multi_rules_.clear();
    if (dedicated_ && watching_) {
      watching_ = false;
      protocol::AppendCommand(dedicated_->out(), {"UNWATCH"});
      dedicated_->Push(nullptr, 0);
      dedicated_->MarkDirty();
    }
    ReplyError("EXECABORT Transaction discarded because of previous errors.");
    return true;
  }
  if (!dedicated_) {
    if (inflight() > 0) {
      cmulti_ = in_multi_ = true;  // retry EXEC once earlier replies are in
      return false;
    }
    config::Endpoint ep;
    if (!worker_.EndpointForSlot(cmulti_slot_, &ep)) {
      worker_.RequestTopologyRefresh();
      multi_rules_.clear();
      ReplyError("CLUSTERDOWN keyfence: the cluster topology is not known yet");
      return true;
    }
    dedicated_ = worker_.TakeDedicated(proto_, &ep);
    dedicated_slot_ = cmulti_slot_;
    mode_ = Mode::kDedicated;
  }
  if (!dedicated_->Available()) {
    ReplyError(dedicated_->down_error());
    dedicated_.reset();
    mode_ = Mode::kNormal;
    watching_ = false;
    multi_rules_.clear();
    return true;
  }
  std::string& o = dedicated_->out();
  protocol::AppendCommand(o, {"MULTI"});
  dedicated_->Push(nullptr, 0);
  o.append(cmulti_bytes_);
  for (size_t i = 0; i < cmulti_count_; ++i) dedicated_->Push(nullptr, 0);  // +QUEUED
  protocol::AppendCommand(o, {"EXEC"});
  dedicated_->MarkDirty();
  watching_ = false;
  Slot& s = NewSlot(ReplyRule::kNone);
  s.exec_rules = std::move(multi_rules_);
  multi_rules_.clear();
  cmulti_bytes_.clear();
  dedicated_->Push(this, s.seq);
  return true;
}

void ClientSession::SplitBySlot(const CommandInfo& cmd, int step) {
  // Group the keys (and MSET values) by slot, keeping the client's order.
  std::vector<std::pair<int, std::vector<size_t>>> groups;  // slot -> arg positions
  for (size_t i = 1; i + step - 1 < args_.size(); i += step) {
    int s = tenancy::BackendKeySlot(prefix_crc_, args_[i]);
    auto it = std::find_if(groups.begin(), groups.end(),
                           [s](const auto& g) { return g.first == s; });
    if (it == groups.end()) {
      groups.push_back({s, {}});
      it = groups.end() - 1;
    }
    it->second.push_back(i);
  }
  FanOut::Kind kind = cmd.name == "mget"   ? FanOut::Kind::kMget
                      : cmd.name == "mset" ? FanOut::Kind::kMset
                                           : FanOut::Kind::kSum;
  Slot& slot = NewSlot(ReplyRule::kNone);
  auto f = std::make_unique<FanOut>(*this, kind, slot.seq, groups.size(),
                                    (args_.size() - 1) / step, proto_);
  f->SetNames(tenant_->prefix, "");
  FanOut* raw = f.get();
  fanouts_.push_back(std::move(f));
  std::string upper(cmd.name);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto& pos = groups[g].second;
    scratch_.clear();
    protocol::AppendArrayHeader(scratch_, 1 + pos.size() * step);
    protocol::AppendBulk(scratch_, upper);
    std::vector<size_t> client_pos;
    for (size_t p : pos) {
      protocol::AppendBulkHeader(scratch_, tenancy::BackendKeyLength(tenant_->prefix, args_[p]));
      tenancy::AppendBackendKey(scratch_, tenant_->prefix, args_[p]);
      scratch_.append("\r\n");
      if (step == 2) protocol::AppendBulk(scratch_, args_[p + 1]);
      client_pos.push_back((p - 1) / step);
    }
    raw->SetPositions(g, std::move(client_pos));
    worker_.router().Send(scratch_, groups[g].first, raw, g, proto_, true);
  }
}

bool ClientSession::ClusterKeys(std::string_view pattern) {
  const auto& masters = worker_.masters();
  if (masters.empty()) {
    worker_.RequestTopologyRefresh();
    ReplyError("CLUSTERDOWN keyfence: the cluster topology is not known yet");
    return true;
  }
  std::string backend_pattern = protocol::GlobEscape(tenant_->prefix);
  size_t lit = protocol::GlobLiteralPrefix(pattern);
  backend_pattern.append(pattern.substr(0, lit));
  backend_pattern.push_back('*');
  Slot& slot = NewSlot(ReplyRule::kNone);
  auto f = std::make_unique<FanOut>(*this, FanOut::Kind::kKeys, slot.seq, masters.size(), 0,
                                    proto_);
  f->SetNames(tenant_->prefix, pattern == "*" ? "" : std::string(pattern));
  FanOut* raw = f.get();
  fanouts_.push_back(std::move(f));
  for (size_t i = 0; i < masters.size(); ++i) {
    scratch_.clear();
    protocol::AppendCommand(scratch_, {"KEYS", backend_pattern});
    BackendConn& c = worker_.NodeConn(masters[i], proto_, id_);
    if (!c.Available()) {
      std::string e;
      protocol::AppendError(e, c.down_error());
      raw->OnReply(i, e);
      continue;
    }
    c.out().append(scratch_);
    c.Push(raw, i);
    c.MarkDirty();
  }
  return true;
}

bool ClientSession::ClusterScan(uint64_t cursor, const std::vector<std::string>& backend_args,
                                std::string_view pattern) {
  const auto& masters = worker_.masters();
  size_t node = cursor & ((uint64_t{1} << FanOut::kScanNodeBits) - 1);
  uint64_t backend_cursor = cursor >> FanOut::kScanNodeBits;
  if (masters.empty() || node >= masters.size()) {
    if (masters.empty()) worker_.RequestTopologyRefresh();
    ReplyError("ERR invalid cursor");
    return true;
  }
  StartScanWalk(masters, node, backend_cursor, backend_args, pattern);
  return true;
}

// SCAN over `nodes` (standalone: the one server) through a FanOut that keeps
// scanning past empty pages up to the client's COUNT (default 10).
void ClientSession::StartScanWalk(const std::vector<config::Endpoint>& nodes, size_t node,
                                  uint64_t cursor, const std::vector<std::string>& backend_args,
                                  std::string_view pattern) {
  // The client's COUNT (default 10) is how many names it wants; each backend
  // SCAN asks for at least kBackendScanCount entries, most of which may belong
  // to other tenants.
  constexpr uint64_t kBackendScanCount = 100;
  size_t want = 10;
  std::vector<std::string> args = backend_args;
  bool has_count = false;
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    if (EqNoCase(args[i], "count")) {
      has_count = true;
      uint64_t c = 0;
      std::string_view v = args[i + 1];
      if (std::from_chars(v.data(), v.data() + v.size(), c).ec == std::errc() && c > 0) {
        want = std::min<uint64_t>(c, 100000);
        args[i + 1] = std::to_string(std::max(c, kBackendScanCount));
      }
    }
  }
  if (!has_count) args.insert(args.end(), {"COUNT", std::to_string(kBackendScanCount)});
  Slot& slot = NewSlot(ReplyRule::kNone);
  auto f = std::make_unique<FanOut>(*this, FanOut::Kind::kScan, slot.seq, 1, 0, proto_);
  f->SetNames(tenant_->prefix, std::string(pattern));
  FanOut* raw = f.get();
  fanouts_.push_back(std::move(f));
  raw->StartScan(worker_, nodes, node, cursor, std::move(args), want);
}

void ClientSession::FanOutDone(FanOut* f) {
  for (auto& p : fanouts_) {
    if (p.get() == f) {
      FanOut* raw = p.release();
      boost::asio::post(worker_.io(), [raw] { delete raw; });
      break;
    }
  }
  std::erase_if(fanouts_, [](const auto& p) { return p == nullptr; });
}

}  // namespace keyfence::proxy
