// Redis glob matching: a transcription of util.c stringmatchlen_impl (Redis
// 7.0, with the nesting limit and the skip-longer-matches cut-off that bound
// its running time), reading through string_views instead of relying on a NUL
// terminator. Character comparisons follow x86 Redis: `char` is signed, so
// ranges order bytes >= 0x80 before ASCII, and nocase folds ASCII letters only.
#include "protocol/glob.h"

namespace keyfence::protocol {
namespace {

constexpr int kMaxNesting = 1000;

inline int Fold(int c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; }

// The byte as a signed char promoted to int, like `int c = string[0]` in C.
inline int At(const char* p) { return static_cast<signed char>(*p); }

// Matches a "[...]" class against c. On entry p points just past '['; on exit
// p/plen point at the closing ']' (or at the last pattern byte when the class
// is unterminated), mirroring the C loop so the caller's final step is shared.
bool MatchClass(const char*& p, size_t& plen, char c, bool nocase) {
  const bool negate = plen > 0 && p[0] == '^';
  if (negate) {
    ++p;
    --plen;
  }
  bool match = false;
  for (;;) {
    if (plen == 0) {  // unterminated class: step back onto the last byte
      --p;
      ++plen;
      break;
    }
    if (p[0] == '\\' && plen >= 2) {
      ++p;
      --plen;
      if (p[0] == c) match = true;
    } else if (p[0] == ']') {
      break;
    } else if (plen >= 3 && p[1] == '-') {
      int start = At(p);
      int end = At(p + 2);
      int ch = static_cast<signed char>(c);
      if (start > end) {
        const int t = start;
        start = end;
        end = t;
      }
      if (nocase) {
        start = Fold(start);
        end = Fold(end);
        ch = Fold(ch);
      }
      p += 2;
      plen -= 2;
      if (ch >= start && ch <= end) match = true;
    } else if (!nocase) {
      if (p[0] == c) match = true;
    } else if (Fold(At(p)) == Fold(static_cast<signed char>(c))) {
      match = true;
    }
    ++p;
    --plen;
  }
  return negate ? !match : match;
}

bool Match(const char* p, size_t plen, const char* s, size_t slen, bool nocase, bool* skip_longer,
           int nesting) {
  if (nesting > kMaxNesting) return false;  // protection against abusive patterns
  while (plen > 0 && slen > 0) {
    switch (p[0]) {
      case '*':
        while (plen > 1 && p[1] == '*') {
          ++p;
          --plen;
        }
        if (plen == 1) return true;
        while (slen > 0) {
          if (Match(p + 1, plen - 1, s, slen, nocase, skip_longer, nesting + 1)) return true;
          if (*skip_longer) return false;
          ++s;
          --slen;
        }
        // The rest of the pattern matches nowhere in the rest of the string:
        // no earlier '*' can help by consuming more, so stop trying.
        *skip_longer = true;
        return false;
      case '?':
        ++s;
        --slen;
        break;
      case '[':
        ++p;
        --plen;
        if (!MatchClass(p, plen, s[0], nocase)) return false;
        ++s;
        --slen;
        break;
      case '\\':
        if (plen >= 2) {
          ++p;
          --plen;
        }
        [[fallthrough]];
      default:
        if (!nocase) {
          if (p[0] != s[0]) return false;
        } else if (Fold(At(p)) != Fold(At(s))) {
          return false;
        }
        ++s;
        --slen;
        break;
    }
    ++p;
    --plen;
    if (slen == 0) {
      while (plen > 0 && p[0] == '*') {
        ++p;
        --plen;
      }
      break;
    }
  }
  return plen == 0 && slen == 0;
}

bool IsGlobSpecial(char c) { return c == '*' || c == '?' || c == '[' || c == ']' || c == '\\'; }

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view str, bool nocase) {
  bool skip_longer = false;
  return Match(pattern.data(), pattern.size(), str.data(), str.size(), nocase, &skip_longer, 0);
}

std::string GlobEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (char c : s) {
    if (IsGlobSpecial(c)) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

size_t GlobLiteralPrefix(std::string_view pattern) {
  size_t i = 0;
  while (i < pattern.size() && !IsGlobSpecial(pattern[i]) && pattern[i] != '{') ++i;
  return i;
}

}  // namespace keyfence::protocol
