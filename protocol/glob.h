// Redis glob semantics (stringmatchlen): * ? [abc] [^a] [a-z] and \ escapes.
#pragma once

#include <string>
#include <string_view>

namespace keyfence::protocol {

bool GlobMatch(std::string_view pattern, std::string_view str, bool nocase = false);

// Escapes every glob special character (* ? [ ] \) so the result matches s literally.
std::string GlobEscape(std::string_view s);

// Length of the longest prefix of pattern that is a plain literal: no glob
// special character, no backslash and no '{' (hash tags are rewritten, so a
// literal prefix must stop before one). E.g. "user:1*" -> 7.
size_t GlobLiteralPrefix(std::string_view pattern);

}  // namespace keyfence::protocol
