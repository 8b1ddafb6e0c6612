#include "proxy/backend/control_link.h"

#include <spdlog/spdlog.h>

#include "proxy/backend/node_health.h"

#include "protocol/writer.h"

namespace keyfence::proxy {

namespace {

// nodes[*i] and its subtree; *i moves past them. Attributes are skipped.
ControlReply Build(const std::vector<protocol::ReplyNode>& nodes, size_t* i) {
  while (*i < nodes.size() && nodes[*i].attribute) *i = protocol::SkipReplySubtree(nodes, *i);
  ControlReply r;
  if (*i >= nodes.size()) return r;
  const protocol::ReplyNode& n = nodes[(*i)++];
  r.type = n.type;
  r.is_null = n.is_null;
  r.integer = n.integer;
  r.str.assign(n.str);
  const bool aggregate = n.type == protocol::ReplyType::kArray ||
                         n.type == protocol::ReplyType::kSet ||
                         n.type == protocol::ReplyType::kPush ||
                         n.type == protocol::ReplyType::kMap;
  if (aggregate && !n.is_null) {
    r.elements.reserve(static_cast<size_t>(n.count));
    for (int64_t k = 0; k < n.count; ++k) r.elements.push_back(Build(nodes, i));
  }
  return r;
}

}  // namespace

ControlReply ToControlReply(const std::vector<protocol::ReplyNode>& nodes) {
  size_t i = 0;
  return Build(nodes, &i);
}

std::unique_ptr<ControlLink> ControlLink::Open(const config::Endpoint& node,
                                               const config::Backend& be, std::string_view what,
                                               const std::atomic<bool>* cancel) {
  const int timeout = static_cast<int>(be.connect_timeout_ms);
  std::unique_ptr<ControlLink> link(new ControlLink(node.ToString(), timeout, cancel));
  if (std::string err = link->socket_.Connect(node, timeout, be.tls.get());
      !err.empty()) {
    // One line per outage of the node, whoever notices it (node_health).
    spdlog::debug("{}: {} unreachable: {}", what, node.ToString(), err);
    node_health::NoteFailure(node.ToString(), std::string(what) + ": " + err);
    return nullptr;
  }
  node_health::NoteUp(node.ToString());
  if (be.password.empty()) return link;
  std::optional<ControlReply> a =
      be.username.empty() ? link->Command({"AUTH", be.password})
                          : link->Command({"AUTH", be.username, be.password});
  if (!a || a->is_error()) {
    spdlog::error("{}: AUTH as keyfence failed on {}", what, node.ToString());
    return nullptr;
  }
  return link;
}

void ControlLink::Append(std::span<const std::string_view> args) {
  protocol::AppendCommand(out_, args);
}

std::optional<ControlReply> ControlLink::Command(std::span<const std::string_view> args) {
  Append(args);
  return Next();
}

std::optional<ControlReply> ControlLink::Next() { return Read(timeout_ms_, nullptr); }

std::optional<ControlReply> ControlLink::Next(int silence_ms, bool* silent) {
  *silent = false;
  return Read(silence_ms, silent);
}

std::optional<ControlReply> ControlLink::Read(int wait_ms, bool* silent) {
  if (dead_) return std::nullopt;
  if (!out_.empty()) {
    if (!socket_.SendAll(out_, timeout_ms_)) {
      dead_ = true;
      return std::nullopt;
    }
    out_.clear();
  }
  protocol::ReplyFramer framer;
  std::string& in = socket_.buffer();
  for (;;) {
    size_t used = 0;
    const protocol::ParseStatus st = framer.Frame(in, &used);
    if (st == protocol::ParseStatus::kOk) {
      std::vector<protocol::ReplyNode> nodes;
      if (!protocol::ParseReplyTree(std::string_view(in.data(), used), &nodes)) break;
      ControlReply r = ToControlReply(nodes);
      in.erase(0, used);
      return r;
    }
    if (st == protocol::ParseStatus::kError) break;
    if (!socket_.Fill(wait_ms)) {
      if (silent != nullptr && socket_.timed_out() && in.empty()) {
        *silent = true;  // a quiet subscription, not a dead link
        return std::nullopt;
      }
      break;
    }
  }
  dead_ = true;
  return std::nullopt;
}

}  // namespace keyfence::proxy
