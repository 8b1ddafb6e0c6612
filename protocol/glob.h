// Redis glob semantics (stringmatchlen): * ? [abc] [^a] [a-z] and \ escapes.
#pragma once

#include <string>
#include <string_view>

namespace keyfence::protocol {

// Exactly stringmatchlen(): note that "*" does not match the empty string
// there (Redis's KEYS and SCAN special-case a lone "*" before calling it).
// Recursion is bounded (1000 nested '*'), and the running time is polynomial.
bool GlobMatch(std::string_view pattern, std::string_view str, bool nocase = false);

// Escapes every glob special character (* ? [ ] \) so the result matches s literally.
std::string GlobEscape(std::string_view s);

// Length of the longest prefix of pattern that is a plain literal: no glob
// special character, no backslash and no '{' (hash tags are rewritten, so a
// literal prefix must stop before one). E.g. "user:1*" -> 6 ("user:1").
size_t GlobLiteralPrefix(std::string_view pattern);

}  // namespace keyfence::protocol
