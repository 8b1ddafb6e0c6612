// WriteRequest: the exact RESP bytes keyfence sends to the backend.
#include <catch2/catch.hpp>
#include <string>

#include "tenancy/rewriter.h"
#include "tenancy_test_util.h"

namespace keyfence::tenancy {
namespace {

using testing::Args;
using testing::Resp;
using testing::Rewritten;
using namespace std::string_literals;

TEST_CASE("rewriter: WriteRequest writes a plain key with the prefix") {
  CHECK(Rewritten({"GET", "key"}) == "*2\r\n$3\r\nGET\r\n$15\r\nshop@orders:key\r\n");
  CHECK(Rewritten({"set", "k", "v", "EX", "10"}) ==
        "*5\r\n$3\r\nset\r\n$13\r\nshop@orders:k\r\n$1\r\nv\r\n$2\r\nEX\r\n$2\r\n10\r\n");
}

TEST_CASE("rewriter: WriteRequest applies the hash-tag rule to keys") {
  CHECK(Rewritten({"GET", "user:{42}:cart"}) ==
        "*2\r\n$3\r\nGET\r\n$38\r\nshop@orders:user:{shop@orders:42}:cart\r\n");
  CHECK(Rewritten({"MSET", "a", "1", "{t}b", "{t}2"}) ==
        Resp({"MSET", "shop@orders:a", "1", "shop@orders:{shop@orders:t}b", "{t}2"}));
  CHECK(Rewritten({"MGET", "a{}b", "{abc"}) ==
        Resp({"MGET", "shop@orders:a{}b", "shop@orders:{abc"}));
}

TEST_CASE("rewriter: WriteRequest rewrites only the names, never values or options") {
  CHECK(Rewritten({"ZUNIONSTORE", "dst", "2", "a", "b", "WEIGHTS", "1", "2"}) ==
        Resp({"ZUNIONSTORE", "shop@orders:dst", "2", "shop@orders:a", "shop@orders:b", "WEIGHTS",
              "1", "2"}));
  CHECK(Rewritten({"EVAL", "return redis.call('get', KEYS[1])", "1", "k", "other"}) ==
        Resp({"EVAL", "return redis.call('get', KEYS[1])", "1", "shop@orders:k", "other"}));
  CHECK(Rewritten({"XREAD", "COUNT", "1", "STREAMS", "a", "b", "0-0", "$"}) ==
        Resp({"XREAD", "COUNT", "1", "STREAMS", "shop@orders:a", "shop@orders:b", "0-0", "$"}));
  CHECK(Rewritten({"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"}) ==
        Resp({"XREADGROUP", "GROUP", "g", "c", "STREAMS", "shop@orders:s", ">"}));
  CHECK(Rewritten({"OBJECT", "ENCODING", "k"}) == Resp({"OBJECT", "ENCODING", "shop@orders:k"}));
  CHECK(Rewritten({"GEORADIUS", "g", "0", "0", "1", "km", "STORE", "d"}) ==
        Resp({"GEORADIUS", "shop@orders:g", "0", "0", "1", "km", "STORE", "shop@orders:d"}));
}

TEST_CASE("rewriter: WriteRequest rewrites SORT patterns like keys, but not GET #") {
  CHECK(Rewritten({"SORT", "k", "BY", "w_*", "GET", "#", "GET", "h_{t}*->f", "STORE", "d"}) ==
        Resp({"SORT", "shop@orders:k", "BY", "shop@orders:w_*", "GET", "#", "GET",
              "shop@orders:h_{shop@orders:t}*->f", "STORE", "shop@orders:d"}));
}

TEST_CASE("rewriter: WriteRequest prefixes channels and patterns without the tag rule") {
  CHECK(Rewritten({"SUBSCRIBE", "news", "{eu}x"}) ==
        Resp({"SUBSCRIBE", "shop@orders:news", "shop@orders:{eu}x"}));
  CHECK(Rewritten({"PSUBSCRIBE", "n*", "[ab]?"}) ==
        Resp({"PSUBSCRIBE", "shop@orders:n*", "shop@orders:[ab]?"}));
  CHECK(Rewritten({"PUBLISH", "{ch}", "hello {ch}"}) ==
        Resp({"PUBLISH", "shop@orders:{ch}", "hello {ch}"}));
  CHECK(Rewritten({"PUBSUB", "NUMSUB", "a", "b"}) ==
        Resp({"PUBSUB", "NUMSUB", "shop@orders:a", "shop@orders:b"}));
}

TEST_CASE("rewriter: WriteRequest treats shard channels like keys (hash-tag rule)") {
  CHECK(Rewritten({"SSUBSCRIBE", "{t}c", "d"}) ==
        Resp({"SSUBSCRIBE", "shop@orders:{shop@orders:t}c", "shop@orders:d"}));
  CHECK(Rewritten({"SPUBLISH", "{t}c", "m"}) ==
        Resp({"SPUBLISH", "shop@orders:{shop@orders:t}c", "m"}));
}

TEST_CASE("rewriter: WriteRequest copies keyless commands as they are") {
  CHECK(Rewritten({"TIME"}) == "*1\r\n$4\r\nTIME\r\n");
  CHECK(Rewritten({"MULTI"}) == "*1\r\n$5\r\nMULTI\r\n");
}

TEST_CASE("rewriter: WriteRequest handles empty, binary and long arguments") {
  const std::string bin = "a\0\r\n{\xff}"s;
  const std::string long_value(1000, 'x');
  CHECK(Rewritten({"SET", "", long_value}) ==
        "*3\r\n$3\r\nSET\r\n$12\r\nshop@orders:\r\n$1000\r\n" + long_value + "\r\n");
  CHECK(Rewritten({"SET", bin, ""}) ==
        "*3\r\n$3\r\nSET\r\n$31\r\nshop@orders:a\0\r\n{"s + "shop@orders:\xff}\r\n$0\r\n\r\n");
}

TEST_CASE("rewriter: WriteRequest appends after what the buffer holds") {
  const Args args = {"GET", "k"};
  NameRefs refs;
  refs.push_back({1, RefKind::kKey, 0});
  std::string out = "*1\r\n$4\r\nPING\r\n";
  WriteRequest(args, refs, testing::kPrefix, out);
  CHECK(out == "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$13\r\nshop@orders:k\r\n");
  // A second request reuses the same buffer.
  WriteRequest(args, refs, "shop@billing:", out);
  CHECK(out.substr(out.size() - 21) == "$14\r\nshop@billing:k\r\n");
}

TEST_CASE("rewriter: WriteRequest with hand-made refs of each kind") {
  const Args args = {"X", "{t}a", "{t}b", "{t}c", "{t}d", "{t}e", "{t}f"};
  NameRefs refs;
  refs.push_back({1, RefKind::kKey, 0});
  refs.push_back({2, RefKind::kKeyPattern, 0});
  refs.push_back({3, RefKind::kChannel, 0});
  refs.push_back({4, RefKind::kChannelPattern, 0});
  refs.push_back({5, RefKind::kShardChannel, 0});
  std::string out;
  WriteRequest(args, refs, "p:", out);
  CHECK(out == Resp({"X", "p:{p:t}a", "p:{p:t}b", "p:{t}c", "p:{t}d", "p:{p:t}e", "{t}f"}));
}

}  // namespace
}  // namespace keyfence::tenancy
