// GlobMatch against Redis stringmatchlen semantics; GlobEscape and
// GlobLiteralPrefix.
#include "protocol/glob.h"

#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

namespace keyfence::protocol {
namespace {

using namespace std::string_literals;

struct Case {
  std::string pattern;
  std::string str;
  bool match;
  bool nocase = false;
};

TEST_CASE("glob: Redis stringmatchlen cases") {
  const std::vector<Case> cases = {
      // Literals and the empty pattern.
      {"", "", true},
      {"", "a", false},
      {"a", "", false},
      {"abc", "abc", true},
      {"abc", "abd", false},
      {"abc", "ab", false},
      {"ab", "abc", false},
      // '*'
      {"*", "anything", true},
      {"*", "", false},  // stringmatchlen quirk: KEYS/SCAN special-case a lone '*'
      {"**", "x", true},
      {"a*", "a", true},
      {"a*", "abc", true},
      {"*c", "abc", true},
      {"*c", "abd", false},
      {"a*c", "ac", true},
      {"a*c", "abbbc", true},
      {"a*c", "abbbd", false},
      {"h*llo", "hllo", true},
      {"*a*b*c*", "xxaxxbxxcxx", true},
      {"*a*b*c*", "xxaxxcxxbxx", false},
      {"user:*", "user:1000", true},
      {"user:*", "users:1000", false},
      {"a**", "a", true},
      {"a*b", "a", false},
      // '?'
      {"a?c", "abc", true},
      {"a?c", "ac", false},
      {"???", "abc", true},
      {"???", "ab", false},
      {"?", "\xff", true},
      // Classes.
      {"h[ae]llo", "hello", true},
      {"h[ae]llo", "hallo", true},
      {"h[ae]llo", "hillo", false},
      {"h[^e]llo", "hallo", true},
      {"h[^e]llo", "hello", false},
      {"h[a-b]llo", "hbllo", true},
      {"h[a-b]llo", "hcllo", false},
      {"[c-a]", "b", true},  // reversed ranges are swapped
      {"[a-c]", "B", false},
      {"[a-c]", "B", true, true},
      {"[A-Z]", "q", true, true},
      {"[A-Z]", "q", false},
      {"[abc-]", "-", false},  // "c-]" is read as a range, leaving the class open
      {"[a-]", "-", false},    // likewise: the range 'a'..']' (swapped)
      {"[a-]", "_", true},
      {"[-a]", "-", true},
      {"[\\]]", "]", true},
      {"[\\-]", "-", true},
      {"[\\a-c]", "b", false},  // "\a" is a literal 'a', then '-' and 'c' are literals
      {"[\\a-c]", "-", true},
      {"[]", "a", false},
      {"[^]", "a", true},
      {"[abc", "a", true},  // an unterminated class still matches its members
      {"[abc", "d", false},
      {"[^", "a", true},
      {"[", "a", false},
      {"x[", "x", false},
      {"[a-\xff]", "0", true},  // signed chars: the range is \xff (-1) .. 'a'
      {"[a-\xff]", "z", false},
      {"[a-\xff]", "\x80", false},
      // Escapes.
      {"\\*", "*", true},
      {"\\*", "a", false},
      {"\\?", "?", true},
      {"\\[a]", "[a]", true},
      {"a\\", "a\\", true},  // a trailing backslash is literal
      {"\\\\", "\\", true},
      {"user:\\*", "user:*", true},
      {"user:\\*", "user:1", false},
      // nocase.
      {"HeLLo", "hello", true, true},
      {"HeLLo", "hello", false},
      {"h?LLO", "hello", true, true},
      {"\xc3\x89", "\xc3\xa9", false, true},  // only ASCII folds
      // Binary strings.
      {"a\0*"s, "a\0b"s, true},
      {"a?b", "a\0b"s, true},
      {"*{*}*", "user:{42}:cart", true},
  };
  for (const Case& c : cases) {
    CAPTURE(c.pattern, c.str, c.nocase);
    REQUIRE(GlobMatch(c.pattern, c.str, c.nocase) == c.match);
  }
}

TEST_CASE("glob: abusive patterns finish quickly") {
  // Exponential without the skip-longer-matches cut-off (Redis CVE-2022-36021).
  const std::string pattern = "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
  REQUIRE_FALSE(GlobMatch(pattern, std::string(5000, 'a')));
  REQUIRE(GlobMatch(pattern, std::string(5000, 'a') + "b"));
  // Recursion is bounded at 1000 nested stars: a match needing more fails.
  std::string stars;
  for (int i = 0; i < 1100; ++i) stars += "*a";
  REQUIRE_FALSE(GlobMatch(stars, std::string(1100, 'a')));
  REQUIRE(GlobMatch(stars.substr(0, 1800), std::string(900, 'a')));
}

TEST_CASE("glob: escaped strings match only themselves") {
  std::mt19937 rng(42);
  const char alphabet[] = "ab*?[]\\^-{}:";
  for (int i = 0; i < 2000; ++i) {
    std::string s;
    const size_t len = rng() % 10;
    for (size_t j = 0; j < len; ++j) s.push_back(alphabet[rng() % (sizeof(alphabet) - 1)]);
    std::string other = s;
    if (!other.empty()) other[rng() % other.size()] = alphabet[rng() % (sizeof(alphabet) - 1)];
    CAPTURE(s, other);
    const std::string escaped = GlobEscape(s);
    REQUIRE(GlobMatch(escaped, s));
    REQUIRE(GlobMatch(escaped, other) == (s == other));
    REQUIRE(GlobMatch(escaped + "*", s + "tail"));
  }
  REQUIRE(GlobEscape("a*b?c[d]e\\f") == "a\\*b\\?c\\[d\\]e\\\\f");
  REQUIRE(GlobEscape("shop@orders:") == "shop@orders:");
}

TEST_CASE("glob: literal prefix stops at specials, backslash and brace") {
  REQUIRE(GlobLiteralPrefix("user:1*") == 6);
  REQUIRE(GlobLiteralPrefix("abc") == 3);
  REQUIRE(GlobLiteralPrefix("") == 0);
  REQUIRE(GlobLiteralPrefix("*") == 0);
  REQUIRE(GlobLiteralPrefix("a?") == 1);
  REQUIRE(GlobLiteralPrefix("ab[c]") == 2);
  REQUIRE(GlobLiteralPrefix("ab]c") == 2);
  REQUIRE(GlobLiteralPrefix("a\\*") == 1);
  REQUIRE(GlobLiteralPrefix("a{b}*") == 1);
  REQUIRE(GlobLiteralPrefix("a}b") == 3);
}

}  // namespace
}  // namespace keyfence::protocol
