// Commands keyfence answers itself (DESIGN.md "Handshake and introspection")
// and the emulations that run inside the tenant's namespace.
#include <charconv>
#include <random>

#include <spdlog/spdlog.h>

#include "protocol/error_replies.h"
#include "protocol/glob.h"
#include "protocol/reply_parser.h"
#include "protocol/slot.h"
#include "protocol/writer.h"
#include "proxy/client_session.h"
#include "proxy/text.h"
#include "proxy/scan_job.h"
#include "proxy/worker.h"
#include "tenancy/namespace.h"
#include "tenancy/policy.h"
#include "tenancy/rewriter.h"

namespace keyfence::proxy {

using protocol::CommandInfo;
using tenancy::Local;
using tenancy::ReplyRule;

namespace {

bool ParseI64(std::string_view s, int64_t* v) {
  if (s.empty() || s.size() > 20) return false;
  char* end = nullptr;
  std::string tmp(s);
  errno = 0;
  long long x = std::strtoll(tmp.c_str(), &end, 10);
  if (errno != 0 || end != tmp.c_str() + tmp.size()) return false;
  *v = x;
  return true;
}

// The backend pattern for a client glob: the namespace prefix plus the literal
// start of the client's pattern (never past a '{', which the rewrite changes).
std::string BackendPattern(std::string_view prefix, std::string_view client_pattern) {
  std::string p = protocol::GlobEscape(prefix);
  size_t lit = protocol::GlobLiteralPrefix(client_pattern);
  p.append(client_pattern.substr(0, lit));
  p.push_back('*');
  return p;
}
}  // namespace

bool ClientSession::HandleLocal(const CommandInfo& cmd, const tenancy::Rule& rule) {
  switch (rule.local) {
    case Local::kPing:
      if (mode_ == Mode::kPubSub && proto_ == 2) {
        // Subscribed clients get the pub/sub form of PONG from the backend.
        tenancy::NameRefs none;
        tenancy::WriteRequest(args_, none, tenant_->prefix, dedicated_->out());
        dedicated_->MarkDirty();
        return true;
      }
      if (args_.size() > 2) {
        ReplyError("ERR wrong number of arguments for 'ping' command");
      } else if (args_.size() == 2) {
        ReplyBulk(args_[1]);
      } else {
        ReplySimple("PONG");
      }
      return true;
    case Local::kEcho:
      ReplyBulk(args_[1]);
      return true;
    case Local::kQuit:
      ReplySimple("OK");
      close_after_flush_ = true;
      return true;
    case Local::kReset:
      if (inflight() > 0) return false;
      if (dedicated_) {
        dedicated_->set_unsolicited(nullptr);
        BackendConn* c = dedicated_.release();
        boost::asio::post(worker_.io(), [c] { delete c; });
      }
      mode_ = Mode::kNormal;
      in_multi_ = watching_ = blocking_ = multi_error_ = false;
      classic_subs_ = shard_subs_ = 0;
      proto_ = 2;
      name_.clear();
      reply_mode_ = ReplyMode::kOn;
      if (listener_.tenant.empty()) {
        LeaveTenant();
        ApplyLimits();
      }
      ReplySimple("RESET");
      return true;
    case Local::kSelect: {
      int64_t db;
      if (!ParseI64(args_[1], &db)) {
        ReplyError("ERR value is not an integer or out of range");
      } else if (db != 0) {
        ReplyError(protocol::errors::kOnlyDb0);
      } else {
        ReplySimple("OK");
      }
      return true;
    }
    case Local::kHello:
      return LocalHello();
    case Local::kAuth:
      return LocalAuth();
    case Local::kClientSetName:
    case Local::kClientGetName:
    case Local::kClientId:
    case Local::kClientInfo:
    case Local::kClientList:
    case Local::kClientSetInfo:
    case Local::kClientReply:
    case Local::kClientNoOp:
      return LocalClient(cmd, rule.local);
    case Local::kCommand:
    case Local::kCommandCount:
    case Local::kCommandInfo:
    case Local::kCommandDocs:
    case Local::kCommandList: {
      // The command table itself reveals nothing about tenants: the backend's
      // own answer is exact.
      BackendConn* conn = RouteShared();
      if (!conn->Available()) {
        ReplyError(conn->down_error());
        return true;
      }
      tenancy::NameRefs none;
      std::string bytes;
      tenancy::WriteRequest(args_, none, "", bytes);
      SendBuilt(*conn, bytes, ReplyRule::kNone, "");
      return true;
    }
    case Local::kCommandGetKeys:
      LocalCommandGetKeys();
      return true;
    case Local::kInfo:
      LocalInfo();
      return true;
    case Local::kConfigGet:
      LocalConfigGet();
      return true;
    case Local::kKeys:
    case Local::kScan:
      return LocalKeysScan(rule.local);
    case Local::kPubsubChannels:
      return LocalPubsubChannels();
    case Local::kDbSize:
    case Local::kFlushDb:
    case Local::kRandomKey:
      return StartScanJob(rule.local);
    case Local::kReadOnly:
    case Local::kReadWrite:
    case Local::kFunctionFlush:
      ReplySimple("OK");
      return true;
    case Local::kCluster:
      LocalCluster(cmd);
      return true;
    case Local::kPubsubNumsub:
    case Local::kPubsubNumpat:
    case Local::kNone:
      break;
  }
  ReplyError(tenancy::NoPermCommand(cmd));
  return true;
}

bool ClientSession::LocalHello() {
  int proto = proto_;
  size_t i = 1;
  if (args_.size() >= 2) {
    int64_t v;
    if (!ParseI64(args_[1], &v)) {
      ReplyError("ERR Protocol version is not an integer or out of range");
      return true;
    }
    if (v != 2 && v != 3) {
      ReplyError("NOPROTO unsupported protocol version");
      return true;
    }
    proto = static_cast<int>(v);
    i = 2;
  }
  const config::Tenant* auth = nullptr;
  bool auth_given = false;
  std::string setname;
  bool has_setname = false;
  for (; i < args_.size(); ++i) {
    if (EqNoCase(args_[i], "auth") && i + 2 < args_.size()) {
      if (!AuthAllowed()) return true;
      auth_given = true;
      auth = snapshot_->Authenticate(args_[i + 1], args_[i + 2]);
      i += 2;
    } else if (EqNoCase(args_[i], "setname") && i + 1 < args_.size()) {
      setname.assign(args_[i + 1]);
      has_setname = true;
      i += 1;
    } else {
      ReplyError("ERR Syntax error in HELLO option '" + std::string(args_[i].substr(0, 64)) + "'");
      return true;
    }
  }
  if (auth_given) {
    if (auth == nullptr || (!listener_.tenant.empty() && auth->app != listener_.tenant)) {
      AuthFailedHere();
      Reject(RejectReason::kAuth, protocol::errors::kWrongPass);
      return true;
    }
    if (SwitchingTenantWithState(auth)) return true;
    if (!SetTenant(auth)) {
      ReplyError(protocol::errors::kMaxClients);
      return true;
    }
  }
  if (!Authenticated()) {
    Reject(RejectReason::kAuth,
           "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
           "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
           "select the RESP protocol version at the same time");
    return true;
  }
  if (has_setname) name_ = setname;
  proto_ = proto;
  std::string& out = LocalReply();
  protocol::AppendMapHeader(out, 7, proto_);
  protocol::AppendBulk(out, "server");
  protocol::AppendBulk(out, "redis");
  protocol::AppendBulk(out, "version");
  protocol::AppendBulk(out, kPresentedRedisVersion);
  protocol::AppendBulk(out, "proto");
  protocol::AppendInteger(out, proto_);
  protocol::AppendBulk(out, "id");
  protocol::AppendInteger(out, static_cast<int64_t>(id_));
  protocol::AppendBulk(out, "mode");
  protocol::AppendBulk(out, "standalone");
  protocol::AppendBulk(out, "role");
  protocol::AppendBulk(out, "master");
  protocol::AppendBulk(out, "modules");
  protocol::AppendArrayHeader(out, 0);
  FinishLocal();
  return true;
}

bool ClientSession::AuthAllowed() {
  if (!worker_.AuthThrottled(remote_ip_, Worker::NowNs())) return true;
  Reject(RejectReason::kAuth,
         "ERR keyfence: too many failed AUTH attempts from this address; try again later");
  return false;
}

void ClientSession::AuthFailedHere() {
  worker_.AuthFailed(remote_ip_, Worker::NowNs());
  spdlog::warn("auth failed: conn={} addr={} listener={}", id_, remote_ip_,
               listener_.bind.ToString());
}

bool ClientSession::LocalAuth() {
  if (!AuthAllowed()) return true;
  const config::Tenant* t = nullptr;
  if (args_.size() == 2) {
    t = snapshot_->AuthenticatePasswordOnly(args_[1]);
  } else if (args_.size() == 3) {
    t = snapshot_->Authenticate(args_[1], args_[2]);
  } else {
    ReplyError("ERR syntax error");
    return true;
  }
  if (t == nullptr || (!listener_.tenant.empty() && t->app != listener_.tenant)) {
    AuthFailedHere();
    Reject(RejectReason::kAuth, protocol::errors::kWrongPass);
    return true;
  }
  if (SwitchingTenantWithState(t)) return true;
  if (!SetTenant(t)) {
    ReplyError(protocol::errors::kMaxClients);
    return true;
  }
  ReplySimple("OK");
  return true;
}

// A connection that holds backend state for one tenant (a subscription, a
// transaction, WATCHed keys, replies still owed) cannot become another
// tenant: that state would keep serving the first namespace.
bool ClientSession::SwitchingTenantWithState(const config::Tenant* t) {
  if (tenant_ == nullptr || t == nullptr || tenant_->app == t->app) return false;
  if (!dedicated_ && !in_multi_ && !cmulti_ && inflight() == 0) return false;
  ReplyError("ERR keyfence: cannot AUTH as another tenant while subscribed, in a transaction "
             "or with requests in flight");
  return true;
}

void ClientSession::LocalConfigGet() {
  BackendConn* conn = RouteShared();
  if (!conn->Available()) return ReplyError(conn->down_error());
  // Ask only for allowed literal names; a glob is asked as given and filtered.
  tenancy::NameRefs none;
  std::string bytes;
  tenancy::WriteRequest(args_, none, "", bytes);
  SendBuilt(*conn, bytes, ReplyRule::kConfigGet, "");
}

void ClientSession::LocalCommandGetKeys() {
  if (args_.size() < 3) return ReplyError("ERR Invalid arguments specified for command");
  std::span<const std::string_view> sub(args_.data() + 2, args_.size() - 2);
  const protocol::CommandTable& table = protocol::CommandTable::Get();
  const CommandInfo* c = table.Find(sub[0]);
  if (c != nullptr && !c->subcommands.empty() && sub.size() > 1) c = table.FindSub(*c, sub[1]);
  if (c == nullptr) return ReplyError("ERR Invalid command specified");
  const tenancy::Rule& r = tenancy::CommandRules::Get().For(c->id);
  tenancy::NameRefs refs;
  if (tenancy::FindNames(r, *c, sub, &refs) != tenancy::FindStatus::kOk || refs.empty()) {
    return ReplyError("ERR Invalid arguments specified for command");
  }
  std::string& out = LocalReply();
  size_t n = 0;
  for (auto& ref : refs) n += ref.kind == tenancy::RefKind::kKey;
  protocol::AppendArrayHeader(out, n);
  for (auto& ref : refs) {
    if (ref.kind == tenancy::RefKind::kKey) protocol::AppendBulk(out, sub[ref.pos]);
  }
  FinishLocal();
}

bool ClientSession::LocalKeysScan(Local what) {
  BackendConn* conn = RouteShared();
  if (!conn->Available()) {
    ReplyError(conn->down_error());
    return true;
  }
  std::string bytes;
  if (what == Local::kKeys && worker_.cluster()) return ClusterKeys(args_[1]);
  if (what == Local::kKeys) {
    std::string pattern(args_[1]);
    protocol::AppendCommand(bytes, {"KEYS", BackendPattern(tenant_->prefix, pattern)});
    SendBuilt(*conn, bytes, ReplyRule::kKeyList, pattern == "*" ? "" : pattern);
    return true;
  }
  // SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
  std::string match, count, type;
  for (size_t i = 2; i < args_.size(); ++i) {
    if (i + 1 >= args_.size()) return ReplyError("ERR syntax error"), true;
    if (EqNoCase(args_[i], "match")) match.assign(args_[++i]);
    else if (EqNoCase(args_[i], "count")) count.assign(args_[++i]);
    else if (EqNoCase(args_[i], "type")) type.assign(args_[++i]);
    else return ReplyError("ERR syntax error"), true;
  }
  if (worker_.cluster()) {
    uint64_t cursor = 0;
    std::string_view c = args_[1];
    if (c.empty() || std::from_chars(c.data(), c.data() + c.size(), cursor).ptr != c.data() + c.size()) {
      ReplyError("ERR invalid cursor");
      return true;
    }
    std::vector<std::string> rest = {"MATCH", BackendPattern(tenant_->prefix, match)};
    if (!count.empty()) rest.insert(rest.end(), {"COUNT", count});
    if (!type.empty()) rest.insert(rest.end(), {"TYPE", type});
    return ClusterScan(cursor, rest, match == "*" ? "" : match);
  }
  uint64_t cursor = 0;
  std::string_view c = args_[1];
  if (c.empty() ||
      std::from_chars(c.data(), c.data() + c.size(), cursor).ptr != c.data() + c.size()) {
    ReplyError("ERR invalid cursor");
    return true;
  }
  std::vector<std::string> rest = {"MATCH", BackendPattern(tenant_->prefix, match)};
  if (!count.empty()) rest.insert(rest.end(), {"COUNT", count});
  if (!type.empty()) rest.insert(rest.end(), {"TYPE", type});
  StartScanWalk({conn->endpoint()}, 0, cursor, rest, match == "*" ? "" : match);
  return true;
}

bool ClientSession::LocalPubsubChannels() {
  BackendConn* conn = RouteShared();
  if (!conn->Available()) {
    ReplyError(conn->down_error());
    return true;
  }
  std::string pattern = args_.size() > 2 ? std::string(args_[2]) : "";
  std::string bytes;
  protocol::AppendCommand(bytes, {args_[0], args_[1], protocol::GlobEscape(tenant_->prefix) + "*"});
  // Shard channels carry the hash-tag rule, like keys.
  ReplyRule rule = EqNoCase(args_[1], "shardchannels") ? ReplyRule::kKeyList : ReplyRule::kChannelList;
  SendBuilt(*conn, bytes, rule, pattern == "*" ? "" : pattern);
  return true;
}

bool ClientSession::StartScanJob(Local what) {
  if (in_multi_) {
    Reject(RejectReason::kDenied, "ERR keyfence: this command is not supported inside MULTI");
    return true;
  }
  BackendConn* conn = RouteShared();
  if (!conn->Available()) {
    ReplyError(conn->down_error());
    return true;
  }
  ScanJob::Kind kind = what == Local::kDbSize    ? ScanJob::Kind::kDbSize
                       : what == Local::kFlushDb ? ScanJob::Kind::kFlush
                                                 : ScanJob::Kind::kRandomKey;
  Slot& s = NewSlot(ReplyRule::kNone);
  std::vector<config::Endpoint> nodes;
  if (worker_.cluster()) {
    nodes = worker_.masters();
  } else {
    nodes.push_back(conn->endpoint());
  }
  if (nodes.empty()) {
    worker_.RequestTopologyRefresh();
    CompleteSlot(s.seq, "-CLUSTERDOWN keyfence: the cluster topology is not known yet\r\n");
    return true;
  }
  auto job = std::make_unique<ScanJob>(*this, worker_, std::move(nodes), kind, s.seq,
                                       tenant_->prefix, proto_);
  ScanJob* raw = job.get();
  jobs_.push_back(std::move(job));
  raw->Start();
  return true;
}

void ClientSession::TrackSubscriptions(std::string_view frame) {
  std::vector<protocol::ReplyNode> n;
  if (!protocol::ParseReplyTree(frame, &n) || n.size() < 4) return;
  if (n[0].count != 3) return;
  std::string_view kind = n[1].str;
  const protocol::ReplyNode& cnt = n[3];
  if (cnt.type != protocol::ReplyType::kInteger) return;
  if (kind == "subscribe" || kind == "unsubscribe" || kind == "psubscribe" ||
      kind == "punsubscribe") {
    classic_subs_ = cnt.integer;
  } else if (kind == "ssubscribe" || kind == "sunsubscribe") {
    shard_subs_ = cnt.integer;
  }
}

}  // namespace keyfence::proxy
