// Error replies keyfence itself produces (DESIGN.md "Replies keyfence itself
// produces"), byte for byte, without the leading '-' and trailing CRLF.
#pragma once

#include <string_view>

namespace keyfence::protocol::errors {

inline constexpr std::string_view kNoAuth = "NOAUTH Authentication required.";
inline constexpr std::string_view kWrongPass =
    "WRONGPASS invalid username-password pair or user is disabled.";
// "NOPERM this user has no permissions to run the '<cmd>' command"
inline constexpr std::string_view kNoPermCommandPrefix =
    "NOPERM this user has no permissions to run the '";
inline constexpr std::string_view kNoPermCommandSuffix = "' command";
inline constexpr std::string_view kNoPermKey =
    "NOPERM this user has no permissions to access one of the keys used as arguments";
inline constexpr std::string_view kCrossSlot = "CROSSSLOT Keys in request don't hash to the same slot";
inline constexpr std::string_view kMaxClients = "ERR max number of clients reached";
inline constexpr std::string_view kOnlyDb0 = "ERR DB index is out of range";

}  // namespace keyfence::protocol::errors
