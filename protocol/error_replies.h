// Error replies keyfence itself produces (DESIGN.md "Replies keyfence itself
// produces"), byte for byte, without the leading '-' and trailing CRLF.
// Every error text keyfence writes comes from this file: constants, and small
// builders for the ones that quote a name or an argument.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace keyfence::protocol::errors {

// --- Authentication and connection ---------------------------------------------------------

inline constexpr std::string_view kNoAuth = "NOAUTH Authentication required.";
inline constexpr std::string_view kWrongPass =
    "WRONGPASS invalid username-password pair or user is disabled.";
inline constexpr std::string_view kMaxClients = "ERR max number of clients reached";
inline constexpr std::string_view kAuthThrottled =
    "ERR keyfence: too many failed AUTH attempts for this user from this address; try again "
    "later";
inline constexpr std::string_view kAuthWithState =
    "ERR keyfence: cannot AUTH as another tenant while subscribed, in a transaction or with "
    "requests in flight";
inline constexpr std::string_view kHelloNoAuth =
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
    "<proto> AUTH <user> <pass> option can be used to authenticate the client and select the "
    "RESP protocol version at the same time";
inline constexpr std::string_view kHelloBadProto =
    "ERR Protocol version is not an integer or out of range";
inline constexpr std::string_view kNoProto = "NOPROTO unsupported protocol version";
inline constexpr std::string_view kListenerTenantMissing =
    "ERR keyfence: this listener's tenant is not configured";
inline constexpr std::string_view kTenantRemoved = "ERR keyfence: tenant removed by configuration";
// listeners[].tenant_from: the verified client certificate names no tenant's cert_names.
inline constexpr std::string_view kCertNoTenant =
    "NOPERM keyfence: the client certificate names no tenant";
inline constexpr std::string_view kCertManyTenants =
    "NOPERM keyfence: the client certificate names more than one tenant";
inline constexpr std::string_view kRequestTooLarge =
    "ERR Protocol error: request larger than max_request_bytes";
inline constexpr std::string_view kTooManyUnauthenticated =
    "ERR keyfence: too many unauthenticated connections from this address";
inline constexpr std::string_view kPreauthTimeout =
    "ERR keyfence: no AUTH within limits.preauth_timeout_ms";
inline constexpr std::string_view kSubscriberLost =
    "ERR keyfence: subscriber connection to the backend was lost";

// --- Command policy (tenancy::Decide) ------------------------------------------------------

// "NOPERM this user has no permissions to run the '<cmd>' command"
inline constexpr std::string_view kNoPermCommandPrefix =
    "NOPERM this user has no permissions to run the '";
inline constexpr std::string_view kNoPermCommandSuffix = "' command";
inline constexpr std::string_view kNoPermKey =
    "NOPERM this user has no permissions to access one of the keys used as arguments";
// A keyspace-notification channel ("__key...") in (P)SUBSCRIBE, PUBLISH, PUBSUB NUMSUB.
inline constexpr std::string_view kNoPermChannel =
    "NOPERM this user has no permissions to access one of the channels used as arguments";
// Also: the keys of a forwarded command cannot be located; bad options of local commands.
inline constexpr std::string_view kSyntax = "ERR syntax error";

// "ERR unknown command '<args[0], first 128 bytes>', with args beginning with: "
// then "'<arg, first 64 bytes>' " for each of args[1..3].
inline std::string UnknownCommand(std::span<const std::string_view> args) {
  std::string e = "ERR unknown command '";
  if (!args.empty()) e.append(args[0].substr(0, 128));
  e += "', with args beginning with: ";
  for (size_t i = 1; i < args.size() && i < 4; ++i) {
    e += '\'';
    e.append(args[i].substr(0, 64));
    e += "' ";
  }
  return e;
}

// "ERR wrong number of arguments for '<name>' command" (name as in the command table:
// lower case, "parent|sub" for a subcommand).
inline std::string Arity(std::string_view name) {
  std::string e = "ERR wrong number of arguments for '";
  e.append(name);
  e += "' command";
  return e;
}

// "ERR unknown subcommand '<sub, first 128 bytes>'. Try <PARENT> HELP."
inline std::string UnknownSubcommand(std::string_view parent, std::string_view sub) {
  std::string e = "ERR unknown subcommand '";
  e.append(sub.substr(0, 128));
  e += "'. Try ";
  for (char c : parent) e += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
  e += " HELP.";
  return e;
}

// A RESP2 connection in pub/sub mode ran anything but (un)subscribe, PING, QUIT, RESET.
inline std::string SubscribedContext(std::string_view name) {
  std::string e = "ERR Can't execute '";
  e.append(name);
  e +=
      "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this "
      "context";
  return e;
}

// kNoPermCommandPrefix + name + kNoPermCommandSuffix.
inline std::string NoPermCommand(std::string_view name) {
  std::string e(kNoPermCommandPrefix);
  e.append(name);
  e.append(kNoPermCommandSuffix);
  return e;
}

inline constexpr std::string_view kFlushInMulti =
    "ERR keyfence: FLUSHDB and FLUSHALL cannot be queued in MULTI (they walk the namespace, "
    "which cannot be atomic with the transaction)";

// Malformed numkeys, in Redis's words (tenancy/numkeys_errors.cc).
inline constexpr std::string_view kNumkeysNegative = "ERR Number of keys can't be negative";
inline constexpr std::string_view kNumkeysTooMany =
    "ERR Number of keys can't be greater than number of args";
inline constexpr std::string_view kNumkeysPositive = "ERR numkeys should be greater than 0";
inline std::string AtLeastOneKey(std::string_view command) {
  return "ERR at least 1 input key is needed for '" + std::string(command) + "' command";
}
inline constexpr std::string_view kFunctionFlushOption =
    "ERR FUNCTION FLUSH only supports SYNC|ASYNC option";
inline constexpr std::string_view kScriptFlushOption =
    "ERR SCRIPT FLUSH only support SYNC|ASYNC option";
inline constexpr std::string_view kGetKeysArity =
    "ERR Invalid number of arguments specified for command";

inline constexpr std::string_view kInvalidClientId = "ERR client-id should be greater than 0";
inline constexpr std::string_view kNoSuchClient = "ERR No such client";
inline constexpr std::string_view kUnblockReason =
    "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR";
inline std::string UnknownClientType(std::string_view t) {
  return "ERR Unknown client type '" + std::string(t) + "'";
}
inline constexpr std::string_view kUnblocked = "UNBLOCKED client unblocked via CLIENT UNBLOCK";

// CONFIG SET notify-keyspace-events (the tenant's own flags).
inline constexpr std::string_view kNotifyFlagsInvalid =
    "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid "
    "event class character. Use 'Ag$lshzxeKEtmdn'.";
inline std::string NotifyFlagsNotOnBackend(std::string_view asked, std::string_view backend) {
  return "ERR keyfence: notify-keyspace-events '" + std::string(asked) +
         "' asks for events the backend does not send (backend.notify_keyspace_events: '" +
         std::string(backend) + "')";
}

// CLIENT TRACKING / CACHING, as Redis 7.0 words them.
inline constexpr std::string_view kTrackingNoRedirTarget =
    "ERR The client ID you want redirect to does not exist";
inline constexpr std::string_view kTrackingPrefixNeedsBcast =
    "ERR PREFIX option requires BCAST mode to be enabled";
inline constexpr std::string_view kTrackingBothOpt =
    "ERR You can't specify both OPTIN mode and OPTOUT mode";
inline constexpr std::string_view kTrackingBcastOpt =
    "ERR OPTIN and OPTOUT are not compatible with BCAST";
inline constexpr std::string_view kTrackingSwitchBcast =
    "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and "
    "then re-enabling it with a different mode.";
inline constexpr std::string_view kTrackingSwitchOpt =
    "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and "
    "then re-enabling it with a different mode.";
inline std::string TrackingPrefixOverlap(std::string_view p, std::string_view other,
                                         bool existing) {
  return "ERR Prefix '" + std::string(p) + "' overlaps with " +
         (existing ? "an existing" : "another provided") + " prefix '" + std::string(other) +
         "'. Prefixes for a single client must not overlap.";
}
inline constexpr std::string_view kCachingNotTracking =
    "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or "
    "OPTOUT mode enabled";
inline constexpr std::string_view kCachingYesNotOptin =
    "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.";
inline constexpr std::string_view kCachingNoNotOptout =
    "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.";

inline std::string NotInMulti(std::string_view command) {
  return "ERR keyfence: " + std::string(command) +
         " cannot be queued in MULTI (it would act when queued, not at EXEC)";
}
inline constexpr std::string_view kTooManyQueued =
    "ERR keyfence: too many commands answered by keyfence queued in one transaction";


// --- Rate limits -----------------------------------------------------------------------------

// "OOM tenant '<app>' is over its memory quota" (limits.memory_quota_bytes, max_keys)
inline std::string QuotaExceeded(std::string_view app) {
  std::string e = "OOM tenant '";
  e.append(app);
  e += "' is over its memory quota";
  return e;
}

// "RATELIMIT tenant '<app>' is over its limit of <n> ops/s"
inline std::string OpsLimit(std::string_view app, uint64_t ops_per_sec) {
  std::string e = "RATELIMIT tenant '";
  e.append(app);
  e += "' is over its limit of ";
  e += std::to_string(ops_per_sec);
  e += " ops/s";
  return e;
}

// "RATELIMIT tenant '<app>' is over its limit of <n> bytes/s"
inline std::string BytesLimit(std::string_view app, uint64_t bytes_per_sec) {
  std::string e = "RATELIMIT tenant '";
  e.append(app);
  e += "' is over its limit of ";
  e += std::to_string(bytes_per_sec);
  e += " bytes/s";
  return e;
}

// --- Local commands --------------------------------------------------------------------------

inline constexpr std::string_view kOnlyDb0 = "ERR DB index is out of range";
inline constexpr std::string_view kNotInteger = "ERR value is not an integer or out of range";
inline constexpr std::string_view kInvalidCursor = "ERR invalid cursor";
inline constexpr std::string_view kBadClientName =
    "ERR Client names cannot contain spaces, newlines or special characters.";
inline constexpr std::string_view kBadLibName =
    "ERR lib-name and lib-ver cannot contain spaces, newlines or special characters.";
// COMMAND GETKEYS
inline constexpr std::string_view kGetKeysInvalidArgs =
    "ERR Invalid arguments specified for command";
inline constexpr std::string_view kGetKeysInvalidCommand = "ERR Invalid command specified";

// "ERR Syntax error in HELLO option '<option, first 64 bytes>'"
inline std::string HelloSyntax(std::string_view option) {
  std::string e = "ERR Syntax error in HELLO option '";
  e.append(option.substr(0, 64));
  e += '\'';
  return e;
}

// CLIENT SETINFO: "ERR Unrecognized option '<option, first 64 bytes>'"
inline std::string UnrecognizedOption(std::string_view option) {
  std::string e = "ERR Unrecognized option '";
  e.append(option.substr(0, 64));
  e += '\'';
  return e;
}

// --- Transactions ----------------------------------------------------------------------------

inline constexpr std::string_view kMultiNested = "ERR MULTI calls can not be nested";
inline constexpr std::string_view kExecWithoutMulti = "ERR EXEC without MULTI";
inline constexpr std::string_view kDiscardWithoutMulti = "ERR DISCARD without MULTI";
// Redis's own reply to WATCH inside MULTI.
inline constexpr std::string_view kWatchInMulti = "ERR WATCH inside MULTI is not allowed";
inline constexpr std::string_view kExecAbort =
    "EXECABORT Transaction discarded because of previous errors.";
inline constexpr std::string_view kSubscribeWithState =
    "ERR keyfence: SUBSCRIBE is not allowed inside a transaction";

// --- Cluster -------------------------------------------------------------------------------

inline constexpr std::string_view kCrossSlot = "CROSSSLOT Keys in request don't hash to the same slot";
inline constexpr std::string_view kMasterUnknown =
    "ERR keyfence: backend unavailable (the sentinels have named no live master yet)";
inline constexpr std::string_view kTopologyUnknown =
    "CLUSTERDOWN keyfence: the cluster topology is not known yet";

// "ERR keyfence: CLUSTER <sub> is not supported"
inline std::string ClusterUnsupported(std::string_view sub) {
  std::string e = "ERR keyfence: CLUSTER ";
  e.append(sub);
  e += " is not supported";
  return e;
}

// --- Backend failures (the client sees these instead of a reply) -------------------------
inline constexpr std::string_view kUnexpectedReply =
    "ERR keyfence: unexpected reply shape from the backend";
inline constexpr std::string_view kBadScanReply =
    "ERR keyfence: unexpected SCAN reply from the backend";
inline constexpr std::string_view kBackendTimeout = "ERR keyfence: backend request timed out";
// Every error about a backend connection starts with this (the router tells
// a failed replica connection from a reply by it).
inline constexpr std::string_view kBackendPrefix = "ERR keyfence: backend ";
inline constexpr std::string_view kTooManyRetries =
    "ERR keyfence: too many cluster redirects or retries";
inline constexpr std::string_view kTooManyRedirects = "ERR keyfence: too many cluster redirects";
inline constexpr std::string_view kTooManyDedicated =
    "ERR keyfence: this tenant has limits.max_dedicated_connections blocking, subscribed or "
    "transaction clients already";
inline constexpr std::string_view kNoScript = "NOSCRIPT No matching script. Please use EVAL.";
inline constexpr std::string_view kSlotMoved =
    "TRYAGAIN keyfence: the key's slot moved to another node; try again";

// In "backend unavailable (not sent: <why>)": the request never reached a server.
inline constexpr std::string_view kNotSent = "not sent: ";
inline constexpr std::string_view kNotSentPrefix = "ERR keyfence: backend unavailable (not sent: ";
// "ERR keyfence: backend unavailable (<why>)". Clients never learn a backend
// address (keyfence logs it): they would bypass keyfence with it.
inline std::string BackendUnavailable(std::string_view why) {
  std::string e(kBackendPrefix);
  e += "unavailable (";
  e.append(why);
  e += ')';
  return e;
}
inline std::string NoMasterForSlot(int slot) {
  return "CLUSTERDOWN keyfence: no master serves slot " + std::to_string(slot) +
         " (failover in progress?)";
}
// A request the parser refused: "ERR " + the parser's Redis-style text.
inline std::string ProtocolError(std::string_view parser_text) {
  return "ERR " + std::string(parser_text);
}
// The whole RESP frame of an error: "-<e>\r\n".
inline std::string Frame(std::string_view e) {
  std::string f = "-";
  f.append(e);
  f += "\r\n";
  return f;
}

// --- Request stream errors (RequestParser::error_text(); sent as "ERR " + text) ----------
inline constexpr std::string_view kProto = "Protocol error";
inline constexpr std::string_view kProtoMultibulkLength = "Protocol error: invalid multibulk length";
inline constexpr std::string_view kProtoBulkLength = "Protocol error: invalid bulk length";
inline constexpr std::string_view kProtoTooBigInline = "Protocol error: too big inline request";
inline constexpr std::string_view kProtoUnbalancedQuotes =
    "Protocol error: unbalanced quotes in request";
inline constexpr std::string_view kProtoExpectedCrlf = "Protocol error: expected CRLF";
inline constexpr std::string_view kProtoTooBigMbulkCount =
    "Protocol error: too big mbulk count string";
inline constexpr std::string_view kProtoTooBigBulkCount =
    "Protocol error: too big bulk count string";
// "Protocol error: expected '$', got '<c>'"
inline std::string ProtoExpectedDollar(char c) {
  std::string s = "Protocol error: expected '$', got '";
  s.push_back(c);
  s.push_back('\'');
  return s;
}

}  // namespace keyfence::protocol::errors
