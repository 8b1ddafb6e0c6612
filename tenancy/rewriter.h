// Request and reply rewriting between the client's names and the backend's.
//
// Request side: WriteRequest encodes a command as RESP straight into the
// backend connection's output buffer, with every name found by FindNames put
// into the tenant's namespace (one copy of each byte, no allocation once the
// buffer has grown). Reply side: RewriteReply strips the prefix from the names
// a reply carries and drops names outside the namespace (cold path).
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "tenancy/command_rules.h"
#include "tenancy/key_finder.h"

namespace keyfence::tenancy {

// Appends `args` as a RESP multibulk to out, rewriting the names in refs.
void WriteRequest(std::span<const std::string_view> args, const NameRefs& refs,
                  std::string_view prefix, std::string& out);

// Extra input for reply rules that filter (KEYS, SCAN MATCH, PUBSUB CHANNELS).
struct ReplyContext {
  std::string_view prefix;
  std::string_view pattern;  // the client's glob; empty = match everything
                             // (kConfigGet: "=" + the tenant's notify flags)
  int proto = 2;             // the client's protocol (2 or 3)
};

// Appends the client's form of `frame` (one complete reply) to out according
// to rule. Error replies and replies of an unexpected shape are copied as they
// are, except that names outside the namespace are never copied.
void RewriteReply(ReplyRule rule, std::string_view frame, const ReplyContext& ctx,
                  std::string& out);

// Error replies may quote a key (e.g. NOGROUP No such key 'P k'): every
// occurrence of the prefix is removed so the client never sees it.
void AppendErrorStripped(std::string_view frame, std::string_view prefix, std::string& out);

// EXEC: each element of the array is rewritten by the rule of the command
// queued at its position (with that command's pattern); kQueuedLocal
// positions (commands keyfence answered) are inserted with their kept reply.
void RewriteExec(std::string_view frame,
                 std::span<const std::pair<ReplyRule, std::string>> rules,
                 const ReplyContext& ctx, std::string& out);

// CONFIG GET: keep only the parameters of the allow-list (a map in RESP3,
// name/value pairs in RESP2).
// `notify`: "=" + the tenant's notify-keyspace-events, put in place of the
// server's (kConfigGet passes it as ReplyContext::pattern); empty: unchanged.
void FilterConfigGet(std::string_view frame, std::string& out, std::string_view notify = {});
bool ConfigParamAllowed(std::string_view name);

}  // namespace keyfence::tenancy
