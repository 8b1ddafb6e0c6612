#include "tenancy/rewriter.h"
#include "protocol/error_replies.h"

#include <algorithm>
#include <vector>

#include "protocol/glob.h"
#include "protocol/reply_parser.h"
#include "protocol/writer.h"
#include "tenancy/namespace.h"

namespace keyfence::tenancy {

using protocol::ReplyNode;
using protocol::ReplyType;

void WriteRequest(std::span<const std::string_view> args, const NameRefs& refs,
                  std::string_view prefix, std::string& out) {
  protocol::AppendArrayHeader(out, args.size());
  size_t r = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    if (r < refs.size() && refs[r].pos == i) {
      switch (refs[r].kind) {
        case RefKind::kKey:
        case RefKind::kKeyPattern:
        case RefKind::kShardChannel:
          protocol::AppendBulkHeader(out, BackendKeyLength(prefix, a));
          AppendBackendKey(out, prefix, a);
          break;
        case RefKind::kChannel:
        case RefKind::kChannelPattern:
          protocol::AppendBulkHeader(out, BackendChannelLength(prefix, a));
          AppendBackendChannel(out, prefix, a);
          break;
      }
      out.append("\r\n", 2);
      ++r;
      continue;
    }
    protocol::AppendBulk(out, a);
  }
}

namespace {

bool IsAggregate(ReplyType t) {
  return t == ReplyType::kArray || t == ReplyType::kMap || t == ReplyType::kSet ||
         t == ReplyType::kPush || t == ReplyType::kAttribute;
}

// Index just past the `values` values starting at i (the attributes before a
// value are part of it), n.size() if the nodes end first. Iterative: a reply
// may nest far deeper than the C++ stack could follow. Each attribute adds
// its children without taking a slot; every other node takes one and adds its
// children.
size_t SkipValues(const std::vector<ReplyNode>& n, size_t i, int64_t values) {
  for (; values > 0 && i < n.size(); ++i) {
    const ReplyNode& x = n[i];
    if (x.attribute) {
      values += x.count;
    } else {
      values += ((IsAggregate(x.type) && !x.is_null) ? x.count : 0) - 1;
    }
  }
  return std::min(i, n.size());
}

// Index just past the subtree starting at i (attributes before a value are
// part of the value's subtree).
size_t Skip(const std::vector<ReplyNode>& n, size_t i) { return SkipValues(n, i, 1); }

// First non-attribute node at or after i.
size_t Value(const std::vector<ReplyNode>& n, size_t i) {
  while (i < n.size() && n[i].attribute) i = SkipValues(n, i + 1, n[i].count);
  return i;
}

std::string_view Bytes(const std::vector<ReplyNode>& n, size_t begin, size_t end) {
  const char* b = n[begin].raw.data();
  const char* e = n[end - 1].raw.data() + n[end - 1].raw.size();
  return std::string_view(b, static_cast<size_t>(e - b));
}

void AppendHeader(std::string& out, ReplyType t, size_t elements) {
  char c = '*';
  switch (t) {
    case ReplyType::kMap: c = '%'; elements /= 2; break;
    case ReplyType::kSet: c = '~'; break;
    case ReplyType::kPush: c = '>'; break;
    default: break;
  }
  out.push_back(c);
  out.append(std::to_string(elements));
  out.append("\r\n", 2);
}

bool IsString(const ReplyNode& n) {
  return (n.type == ReplyType::kBulk || n.type == ReplyType::kSimpleString ||
          n.type == ReplyType::kVerbatim) && !n.is_null;
}

bool Strip(std::string& out, std::string_view prefix, std::string_view name, bool key) {
  return key ? AppendClientKey(out, prefix, name) : AppendClientChannel(out, prefix, name);
}

// Appends name as a bulk in client form; false if outside the namespace.
bool AppendStripped(std::string& out, std::string_view prefix, std::string_view name, bool key,
                    std::string& scratch) {
  scratch.clear();
  if (!Strip(scratch, prefix, name, key)) return false;
  protocol::AppendBulk(out, scratch);
  return true;
}

void Unexpected(std::string& out) {
  protocol::AppendError(out, protocol::errors::kUnexpectedReply);
}

// KEYS / PUBSUB CHANNELS: a flat list of names, filtered.
void NameList(const std::vector<ReplyNode>& n, size_t top, const ReplyContext& ctx, bool key,
              std::string& out) {
  if (n[top].type == ReplyType::kMap) return Unexpected(out);  // a list, never pairs
  std::string names;
  std::vector<std::pair<size_t, size_t>> spans;
  size_t i = top + 1;
  for (int64_t k = 0; k < n[top].count; ++k) {
    size_t v = Value(n, i);
    i = Skip(n, i);
    if (v >= n.size() || !IsString(n[v])) continue;
    size_t start = names.size();
    if (!Strip(names, ctx.prefix, n[v].str, key)) continue;
    std::string_view s(names.data() + start, names.size() - start);
    if (!ctx.pattern.empty() && !protocol::GlobMatch(ctx.pattern, s)) {
      names.resize(start);
      continue;
    }
    spans.emplace_back(start, names.size() - start);
  }
  AppendHeader(out, n[top].type, spans.size());
  for (auto [off, len] : spans) protocol::AppendBulk(out, std::string_view(names).substr(off, len));
}

void FirstIsKey(const std::vector<ReplyNode>& n, size_t top, const ReplyContext& ctx,
                std::string& out) {
  if (n[top].count < 1) return Unexpected(out);
  size_t k0 = Value(n, top + 1);
  if (k0 >= n.size() || !IsString(n[k0])) return Unexpected(out);
  std::string scratch;
  std::string body;
  if (!AppendStripped(body, ctx.prefix, n[k0].str, true, scratch)) return Unexpected(out);
  size_t rest = Skip(n, top + 1);
  size_t end = Skip(n, top);
  out.append(n[top].raw);
  out.append(body);
  if (rest < end) out.append(Bytes(n, rest, end));
}

// XREAD: [[key, entries], ...] (RESP2) or {key: entries} (RESP3).
void Streams(const std::vector<ReplyNode>& n, size_t top, const ReplyContext& ctx,
             std::string& out) {
  std::string scratch, body;
  size_t i = top + 1;
  bool map = n[top].type == ReplyType::kMap;
  int64_t items = map ? n[top].count / 2 : n[top].count;
  for (int64_t k = 0; k < items; ++k) {
    size_t key_node = i;
    if (!map) {
      size_t pair = Value(n, i);
      if (pair >= n.size() || !IsAggregate(n[pair].type) || n[pair].count != 2) {
        return Unexpected(out);
      }
      body.append(n[pair].raw);
      key_node = pair + 1;
    }
    size_t kv = Value(n, key_node);
    if (kv >= n.size() || !IsString(n[kv])) return Unexpected(out);
    if (!AppendStripped(body, ctx.prefix, n[kv].str, true, scratch)) return Unexpected(out);
    size_t val = Skip(n, key_node);
    size_t after = Skip(n, val);
    body.append(Bytes(n, val, after));
    i = map ? after : Skip(n, i);
  }
  out.append(n[top].raw);
  out.append(body);
}

// PUBSUB NUMSUB: [ch, n, ...] (RESP2) or {ch: n} (RESP3).
void Numsub(const std::vector<ReplyNode>& n, size_t top, const ReplyContext& ctx, bool key,
            std::string& out) {
  if (n[top].count % 2 != 0) return Unexpected(out);  // name/count pairs
  std::string scratch, body;
  size_t i = top + 1;
  for (int64_t k = 0; k + 1 < n[top].count; k += 2) {
    size_t ch = Value(n, i);
    if (ch >= n.size() || !IsString(n[ch])) return Unexpected(out);
    if (!AppendStripped(body, ctx.prefix, n[ch].str, key, scratch)) return Unexpected(out);
    size_t val = Skip(n, i);
    size_t after = Skip(n, val);
    body.append(Bytes(n, val, after));
    i = after;
  }
  out.append(n[top].raw);
  out.append(body);
}

// Pub/sub frames: [kind, name..., payload] with the names stripped.
void PubSub(const std::vector<ReplyNode>& n, size_t top, const ReplyContext& ctx,
            std::string& out) {
  if (n[top].count < 2) return out.append(Bytes(n, top, Skip(n, top))), void();
  size_t kind_node = Value(n, top + 1);
  if (!IsString(n[kind_node])) return Unexpected(out);
  std::string_view kind = n[kind_node].str;
  int names = 0;  // how many elements after the kind are names
  bool key = false;
  if (kind == "message" || kind == "subscribe" || kind == "unsubscribe" ||
      kind == "psubscribe" || kind == "punsubscribe") {
    names = 1;
  } else if (kind == "pmessage") {
    names = 2;
  } else if (kind == "smessage" || kind == "ssubscribe" || kind == "sunsubscribe") {
    names = 1;
    key = true;
  }
  std::string scratch;
  out.append(n[top].raw);
  size_t i = top + 1;
  size_t end = Skip(n, top);
  for (int64_t k = 0; k < n[top].count; ++k) {
    size_t next = Skip(n, i);
    size_t v = Value(n, i);
    if (k >= 1 && k <= names && IsString(n[v])) {
      if (!AppendStripped(out, ctx.prefix, n[v].str, key, scratch)) {
        protocol::AppendBulk(out, "");  // never show a foreign name
      }
    } else {
      out.append(Bytes(n, i, next));
    }
    i = next;
  }
  (void)end;
}

}  // namespace

void RewriteReply(ReplyRule rule, std::string_view frame, const ReplyContext& ctx,
                  std::string& out) {
  std::vector<ReplyNode> n;
  if (rule == ReplyRule::kNone) return out.append(frame), void();
  if (!protocol::ParseReplyTree(frame, &n) || n.empty()) return Unexpected(out);
  size_t top = Value(n, 0);
  if (top >= n.size()) return Unexpected(out);
  // Redis 7.0 sends no RESP3 attributes; a reply with names and attributes
  // mixed is not rewritten (never forwarded half-rewritten).
  for (size_t i = top; i < n.size(); ++i) {
    if (n[i].attribute) return Unexpected(out);
  }
  const ReplyNode& t = n[top];
  switch (t.type) {
    case ReplyType::kError:
    case ReplyType::kBlobError:
    case ReplyType::kNull:
    case ReplyType::kInteger:
      return out.append(Bytes(n, top, Skip(n, top))), void();
    default:
      break;
  }
  if (t.is_null) return out.append(Bytes(n, top, Skip(n, top))), void();
  bool agg = IsAggregate(t.type);
  switch (rule) {
    case ReplyRule::kNone:
      break;
    case ReplyRule::kKeyList:
      return agg ? NameList(n, top, ctx, true, out) : Unexpected(out);
    case ReplyRule::kChannelList:
      return agg ? NameList(n, top, ctx, false, out) : Unexpected(out);
    case ReplyRule::kScan: {
      if (t.type != ReplyType::kArray || t.count != 2) return Unexpected(out);
      size_t cursor = Value(n, top + 1);
      size_t list = Skip(n, top + 1);
      size_t lv = Value(n, list);
      if (cursor >= n.size() || !IsString(n[cursor]) || lv >= n.size() ||
          (n[lv].type != ReplyType::kArray && n[lv].type != ReplyType::kSet)) {
        return Unexpected(out);  // checked before anything is written
      }
      out.append(t.raw);
      out.append(Bytes(n, cursor, cursor + 1));
      return NameList(n, lv, ctx, true, out);
    }
    case ReplyRule::kFirstIsKey:
      return agg ? FirstIsKey(n, top, ctx, out) : Unexpected(out);
    case ReplyRule::kStreams:
      return agg ? Streams(n, top, ctx, out) : Unexpected(out);
    case ReplyRule::kNumsub:
      return agg ? Numsub(n, top, ctx, false, out) : Unexpected(out);
    case ReplyRule::kShardNumsub:
      return agg ? Numsub(n, top, ctx, true, out) : Unexpected(out);
    case ReplyRule::kPubSub:
      if (!agg) return out.append(frame), void();  // e.g. +OK, +PONG
      return PubSub(n, top, ctx, out);
    case ReplyRule::kConfigGet:
      return FilterConfigGet(frame, out, ctx.pattern);
    case ReplyRule::kQueuedLocal:
      break;
    case ReplyRule::kSingleKey: {
      if (!IsString(t)) return Unexpected(out);
      std::string scratch;
      if (!AppendStripped(out, ctx.prefix, t.str, true, scratch)) protocol::AppendNull(out, ctx.proto);
      return;
    }
  }
  out.append(frame);
}

}  // namespace keyfence::tenancy

namespace keyfence::tenancy {

void AppendErrorStripped(std::string_view frame, std::string_view prefix, std::string& out) {
  // A redirect that gets this far (on a WATCHed or MULTI connection, or from
  // a script) names a backend address: a retryable error without it instead.
  if (frame.starts_with("-MOVED ") || frame.starts_with("-ASK ")) {
    protocol::AppendError(out, protocol::errors::kSlotMoved);
    return;
  }
  if (prefix.empty() || frame.find(prefix) == std::string_view::npos) {
    out.append(frame);
    return;
  }
  if (frame[0] == '!') {  // blob error: the length changes
    size_t hdr = frame.find("\r\n");
    std::string_view body = frame.substr(hdr + 2, frame.size() - hdr - 4);
    std::string b;
    for (size_t i = 0; i < body.size();) {
      if (body.compare(i, prefix.size(), prefix) == 0) {
        i += prefix.size();
      } else {
        b.push_back(body[i++]);
      }
    }
    out.push_back('!');
    out.append(std::to_string(b.size()));
    out.append("\r\n");
    out.append(b);
    out.append("\r\n");
    return;
  }
  for (size_t i = 0; i < frame.size();) {
    if (frame.compare(i, prefix.size(), prefix) == 0) {
      i += prefix.size();
    } else {
      out.push_back(frame[i++]);
    }
  }
}

void RewriteExec(std::string_view frame,
                 std::span<const std::pair<ReplyRule, std::string>> rules,
                 const ReplyContext& ctx, std::string& out) {
  std::vector<ReplyNode> n;
  if (!protocol::ParseReplyTree(frame, &n) || n.empty()) return Unexpected(out);
  size_t top = Value(n, 0);
  if (top >= n.size() || !IsAggregate(n[top].type) || n[top].is_null) {
    out.append(frame);  // -EXECABORT, nil (WATCH failed)
    return;
  }
  size_t locals = 0;
  for (const auto& r : rules) locals += r.first == ReplyRule::kQueuedLocal ? 1 : 0;
  if (locals > 0 && static_cast<size_t>(n[top].count) + locals != rules.size()) {
    return Unexpected(out);
  }
  if (locals == 0) {
    out.append(n[top].raw);
  } else {
    protocol::AppendArrayHeader(out, rules.size());
  }
  size_t i = top + 1;
  size_t k = 0;  // position in the client's EXEC array
  for (int64_t e = 0; e < n[top].count; ++e, ++k) {
    while (k < rules.size() && rules[k].first == ReplyRule::kQueuedLocal) {
      out.append(rules[k++].second);
    }
    size_t next = Skip(n, i);
    std::string_view elem = Bytes(n, i, next);
    if (k < rules.size() && rules[k].first != ReplyRule::kNone) {
      ReplyContext c = ctx;
      c.pattern = rules[k].second;
      RewriteReply(rules[k].first, elem, c, out);
    } else {
      out.append(elem);
    }
    i = next;
  }
  for (; k < rules.size(); ++k) out.append(rules[k].second);  // locals after the last element
}

namespace {
// CONFIG GET parameters a tenant may read: encoding thresholds and protocol
// limits that clients tune against. Nothing that names paths, addresses,
// users or other tenants.
constexpr std::string_view kConfigAllowed[] = {
    "hash-max-listpack-entries", "hash-max-listpack-value", "hash-max-ziplist-entries",
    "hash-max-ziplist-value",    "list-max-listpack-size",  "list-max-ziplist-size",
    "list-compress-depth",       "set-max-intset-entries",  "set-max-listpack-entries",
    "zset-max-listpack-entries", "zset-max-listpack-value", "zset-max-ziplist-entries",
    "zset-max-ziplist-value",    "stream-node-max-bytes",   "stream-node-max-entries",
    "hll-sparse-max-bytes",      "proto-max-bulk-len",      "maxmemory-policy",
    "lua-time-limit",            "busy-reply-threshold",    "lfu-log-factor",
    "lfu-decay-time",            "timeout",                 "databases",
    "save",                      "appendonly",              "notify-keyspace-events",
    "maxmemory-samples",         "active-expire-effort",    "lazyfree-lazy-user-del",
    "lazyfree-lazy-user-flush",  "cluster-enabled",         "slowlog-log-slower-than",
};
}  // namespace

bool ConfigParamAllowed(std::string_view name) {
  for (std::string_view a : kConfigAllowed) {
    if (a.size() == name.size()) {
      bool eq = true;
      for (size_t i = 0; i < a.size() && eq; ++i) {
        eq = a[i] == static_cast<char>(name[i] | (name[i] >= 'A' && name[i] <= 'Z' ? 0x20 : 0));
      }
      if (eq) return true;
    }
  }
  return false;
}

void FilterConfigGet(std::string_view frame, std::string& out, std::string_view notify) {
  std::vector<ReplyNode> n;
  if (!protocol::ParseReplyTree(frame, &n) || n.empty()) return Unexpected(out);
  for (const ReplyNode& x : n) {
    if (x.attribute) return Unexpected(out);
  }
  size_t top = Value(n, 0);
  if (top >= n.size() || !IsAggregate(n[top].type) || n[top].is_null) {
    if (top < n.size() && (n[top].type == ReplyType::kError)) out.append(frame);
    else Unexpected(out);
    return;
  }
  std::string body;
  size_t kept = 0;
  size_t i = top + 1;
  for (int64_t k = 0; k + 1 < n[top].count; k += 2) {
    size_t name = Value(n, i);
    size_t val = Skip(n, i);
    size_t after = Skip(n, val);
    if (IsString(n[name]) && ConfigParamAllowed(n[name].str)) {
      if (!notify.empty() && n[name].str == "notify-keyspace-events") {
        body.append(Bytes(n, i, val));  // the tenant's own flags, not the server's
        protocol::AppendBulk(body, notify.substr(1));
      } else {
        body.append(Bytes(n, i, after));
      }
      kept += 2;
    }
    i = after;
  }
  AppendHeader(out, n[top].type, kept);
  out.append(body);
}

}  // namespace keyfence::tenancy
