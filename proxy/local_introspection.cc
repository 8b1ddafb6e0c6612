// Introspection keyfence answers itself (DESIGN.md "Handshake and
// introspection"): CLIENT, INFO and the single-node CLUSTER view.
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

std::string ClientSession::ClientInfoLine() const {
  boost::system::error_code ec;
  auto remote = socket_.remote_endpoint(ec);
  auto local = socket_.local_endpoint(ec);
  uint64_t now = Worker::NowNs();
  std::string flags = mode_ == Mode::kPubSub ? "P" : (in_multi_ ? "x" : "N");
  return "id=" + std::to_string(id_) + " addr=" + remote.address().to_string() + ":" +
         std::to_string(remote.port()) + " laddr=" + local.address().to_string() + ":" +
         std::to_string(local.port()) + " fd=0 name=" + name_ +
         " age=" + std::to_string((now - created_ns_) / 1000000000) +
         " idle=" + std::to_string((now - last_cmd_ns_) / 1000000000) + " flags=" + flags +
         " db=0 sub=" + std::to_string(classic_subs_) + " psub=0 ssub=" +
         std::to_string(shard_subs_) + " multi=" + (in_multi_ ? "0" : "-1") +
         " qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 "
         "events=r cmd=client|info user=" +
         (tenant_ != nullptr ? tenant_->app : std::string("default")) +
         " redir=-1 resp=" + std::to_string(proto_) + " lib-name=" + lib_name_ +
         " lib-ver=" + lib_ver_ + "\n";
}

bool ClientSession::LocalClient(const CommandInfo& cmd, Local what) {
  switch (what) {
    case Local::kClientSetName:
      for (char c : args_[2]) {
        if (c < '!' || c > '~') {
          ReplyError("ERR Client names cannot contain spaces, newlines or special characters.");
          return true;
        }
      }
      name_.assign(args_[2]);
      ReplySimple("OK");
      return true;
    case Local::kClientGetName:
      if (name_.empty()) ReplyNull(); else ReplyBulk(name_);
      return true;
    case Local::kClientId:
      ReplyInteger(static_cast<int64_t>(id_));
      return true;
    case Local::kClientInfo:
    case Local::kClientList: {
      std::string line = ClientInfoLine();
      protocol::AppendVerbatim(LocalReply(), line, proto_);
      FinishLocal();
      return true;
    }
    case Local::kClientReply:
      if (EqNoCase(args_[2], "on")) {
        reply_mode_ = ReplyMode::kOn;
        discard_this_ = false;
        ReplySimple("OK");
      } else if (EqNoCase(args_[2], "off")) {
        reply_mode_ = ReplyMode::kOff;
      } else if (EqNoCase(args_[2], "skip")) {
        if (reply_mode_ != ReplyMode::kOff) reply_mode_ = ReplyMode::kSkip;
      } else {
        ReplyError("ERR syntax error");
      }
      return true;
    default:
      break;
  }
  ReplyError(tenancy::NoPermCommand(cmd));
  return true;
}

void ClientSession::HandleClientExtension() {
  if (EqNoCase(args_[1], "no-touch")) {
    if (args_.size() == 3 && (EqNoCase(args_[2], "on") || EqNoCase(args_[2], "off"))) {
      return ReplySimple("OK");
    }
    return ReplyError("ERR syntax error");
  }
  if (args_.size() != 4) {
    return ReplyError("ERR wrong number of arguments for 'client|setinfo' command");
  }
  for (char c : args_[3]) {
    if (c < '!' || c > '~') {
      return ReplyError("ERR lib-name and lib-ver cannot contain spaces, newlines or special "
                        "characters.");
    }
  }
  if (EqNoCase(args_[2], "lib-name")) {
    lib_name_.assign(args_[3]);
  } else if (EqNoCase(args_[2], "lib-ver")) {
    lib_ver_.assign(args_[3]);
  } else {
    return ReplyError("ERR Unrecognized option '" + std::string(args_[2].substr(0, 64)) + "'");
  }
  ReplySimple("OK");
}

void ClientSession::LocalInfo() {
  std::string section = args_.size() > 1 ? std::string(args_[1]) : "default";
  for (char& c : section) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  bool all = section == "default" || section == "all" || section == "everything";
  std::string s;
  auto want = [&](std::string_view name) {
    if (all || section == name) return true;
    for (size_t i = 2; i < args_.size(); ++i) {
      if (EqNoCase(args_[i], name)) return true;
    }
    return false;
  };
  boost::system::error_code ec;
  auto local = socket_.local_endpoint(ec);
  if (want("server")) {
    s += "# Server\r\nredis_version:" + std::string(kPresentedRedisVersion) +
         "\r\nredis_mode:standalone\r\nos:keyfence " KEYFENCE_VERSION
         "\r\narch_bits:64\r\nmultiplexing_api:epoll\r\nprocess_id:0\r\ntcp_port:" +
         std::to_string(local.port()) + "\r\nuptime_in_seconds:" +
         std::to_string((Worker::NowNs() - created_ns_) / 1000000000) + "\r\n\r\n";
  }
  if (want("clients")) {
    s += "# Clients\r\nconnected_clients:" + std::to_string(worker_.sessions()) +
         "\r\nblocked_clients:0\r\n\r\n";
  }
  if (want("persistence")) s += "# Persistence\r\nloading:0\r\nasync_loading:0\r\n\r\n";
  if (want("stats")) {
    s += "# Stats\r\ntotal_commands_processed:" + std::to_string(commands_) + "\r\n\r\n";
  }
  if (want("replication")) s += "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n";
  // Cluster-aware clients (redis-py RedisCluster, ioredis Cluster) see one
  // node that owns every slot (DESIGN.md "Handshake and introspection").
  if (want("cluster")) s += "# Cluster\r\ncluster_enabled:1\r\n\r\n";
  if (want("keyspace")) s += "# Keyspace\r\n";
  protocol::AppendVerbatim(LocalReply(), s, proto_);
  FinishLocal();
}

void ClientSession::LocalCluster(const CommandInfo& cmd) {
  boost::system::error_code ec;
  auto local = socket_.local_endpoint(ec);
  std::string host = local.address().to_string();
  static const std::string kId = "6b657966656e6365000000000000000000000000";
  std::string& out = LocalReply();
  if (cmd.name == "cluster|keyslot") {
    std::string k;
    tenancy::AppendBackendKey(k, tenant_->prefix, args_[2]);
    protocol::AppendInteger(out, protocol::KeySlot(k));
  } else if (cmd.name == "cluster|myid") {
    protocol::AppendBulk(out, kId);
  } else if (cmd.name == "cluster|slots") {
    protocol::AppendArrayHeader(out, 1);
    protocol::AppendArrayHeader(out, 3);
    protocol::AppendInteger(out, 0);
    protocol::AppendInteger(out, protocol::kNumSlots - 1);
    protocol::AppendArrayHeader(out, 3);
    protocol::AppendBulk(out, host);
    protocol::AppendInteger(out, local.port());
    protocol::AppendBulk(out, kId);
  } else if (cmd.name == "cluster|nodes") {
    protocol::AppendVerbatim(out,
                             kId + " " + host + ":" + std::to_string(local.port()) + "@" +
                                 std::to_string(local.port() + 10000) +
                                 " myself,master - 0 0 1 connected 0-16383\n",
                             proto_);
  } else if (cmd.name == "cluster|info") {
    protocol::AppendVerbatim(out,
                             "cluster_state:ok\r\ncluster_slots_assigned:16384\r\n"
                             "cluster_slots_ok:16384\r\ncluster_known_nodes:1\r\n"
                             "cluster_size:1\r\ncluster_current_epoch:1\r\n",
                             proto_);
  } else if (cmd.name == "cluster|shards") {
    protocol::AppendArrayHeader(out, 1);
    protocol::AppendMapHeader(out, 2, proto_);
    protocol::AppendBulk(out, "slots");
    protocol::AppendArrayHeader(out, 2);
    protocol::AppendInteger(out, 0);
    protocol::AppendInteger(out, protocol::kNumSlots - 1);
    protocol::AppendBulk(out, "nodes");
    protocol::AppendArrayHeader(out, 1);
    protocol::AppendMapHeader(out, 7, proto_);
    protocol::AppendBulk(out, "id");
    protocol::AppendBulk(out, kId);
    protocol::AppendBulk(out, "port");
    protocol::AppendInteger(out, local.port());
    protocol::AppendBulk(out, "ip");
    protocol::AppendBulk(out, host);
    protocol::AppendBulk(out, "endpoint");
    protocol::AppendBulk(out, host);
    protocol::AppendBulk(out, "role");
    protocol::AppendBulk(out, "master");
    protocol::AppendBulk(out, "replication-offset");
    protocol::AppendInteger(out, 0);
    protocol::AppendBulk(out, "health");
    protocol::AppendBulk(out, "online");
  } else {
    protocol::AppendError(out, "ERR keyfence: CLUSTER " + std::string(cmd.name.substr(8)) +
                                   " is not supported");
  }
  FinishLocal();
}

}  // namespace keyfence::proxy
