// keyfence's own connection to one node for control work (the cluster
// topology, ACL users, node settings, accounting reports, quota
// measurements): requests written as RESP arrays, replies framed and parsed
// by protocol/ (RESP2 and RESP3), owned as a small tree. Blocking style on
// BlockingSocket: connecting and each reply bounded by
// backend.connect_timeout_ms (a reply that keeps coming is not cut: the
// bound is on silence). Authenticated with backend.username/password.
// Control threads only, never a worker.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "protocol/reply_parser.h"
#include "proxy/net/blocking_socket.h"

namespace keyfence::proxy {

struct ControlReply {
  protocol::ReplyType type = protocol::ReplyType::kNull;
  bool is_null = false;
  int64_t integer = 0;
  std::string str;                     // bulk, simple string, error, verbatim, double text
  std::vector<ControlReply> elements;  // arrays, sets, pushes; maps as key, value, ...

  bool is_error() const {
    return type == protocol::ReplyType::kError || type == protocol::ReplyType::kBlobError;
  }
  bool is_string() const {
    return !is_null && (type == protocol::ReplyType::kBulk ||
                        type == protocol::ReplyType::kSimpleString ||
                        type == protocol::ReplyType::kVerbatim);
  }
  bool is_array() const {
    return !is_null && (type == protocol::ReplyType::kArray ||
                        type == protocol::ReplyType::kSet || type == protocol::ReplyType::kPush ||
                        type == protocol::ReplyType::kMap);
  }
  bool is_status(std::string_view s) const {
    return type == protocol::ReplyType::kSimpleString && str == s;
  }
};

class ControlLink {
 public:
  // Connected and authenticated, or null (logged with `what`, e.g. "backend acl").
  static std::unique_ptr<ControlLink> Open(const config::Endpoint& node,
                                           const config::Backend& be, std::string_view what,
                                           const std::atomic<bool>* cancel = nullptr);

  // One command and its reply; nullopt when the link failed (it is then dead).
  std::optional<ControlReply> Command(std::span<const std::string_view> args);
  std::optional<ControlReply> Command(std::initializer_list<std::string_view> args) {
    return Command(std::span<const std::string_view>(args.begin(), args.size()));
  }
  // Pipelining: Append() queues, Next() sends what is queued and reads one reply.
  void Append(std::span<const std::string_view> args);
  void Append(std::initializer_list<std::string_view> args) {
    Append(std::span<const std::string_view>(args.begin(), args.size()));
  }
  std::optional<ControlReply> Next();
  // The same for a link that waits for pushes (SUBSCRIBE): nothing within
  // silence_ms gives nullopt with *silent set, and the link stays usable.
  std::optional<ControlReply> Next(int silence_ms, bool* silent);

  const std::string& node() const { return node_; }

 private:
  // One reply, waiting up to wait_ms of silence; `silent` null: silence kills the link.
  std::optional<ControlReply> Read(int wait_ms, bool* silent);
  ControlLink(std::string node, int timeout_ms, const std::atomic<bool>* cancel)
      : node_(std::move(node)), timeout_ms_(timeout_ms), socket_(cancel) {}

  std::string node_;
  int timeout_ms_;
  BlockingSocket socket_;
  std::string out_;
  bool dead_ = false;
};

// The reply tree of one parsed frame (protocol::ParseReplyTree's pre-order nodes).
ControlReply ToControlReply(const std::vector<protocol::ReplyNode>& nodes);

}  // namespace keyfence::proxy
