// RewriteReply golden pairs: the exact bytes a backend reply becomes for the
// client, per ReplyRule, in RESP2 and RESP3.
#include <pthread.h>

#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "tenancy/rewriter.h"
#include "tenancy_test_util.h"

namespace keyfence::tenancy {
namespace {

using testing::Bulk;
using testing::kUnexpected;
using testing::Reply;

const std::string kP = "shop@orders:";

// Backend form of a client key with a hash tag {t}.
std::string Tagged(const std::string& before, const std::string& tag, const std::string& after) {
  return kP + before + "{" + kP + tag + "}" + after;
}

TEST_CASE("rewriter: KEYS reply is stripped and filtered by the client's pattern") {
  const std::string backend = "*5\r\n" + Bulk(kP + "user:1") + Bulk(kP + "cart:1") +
                              Bulk("shop@billing:user:9") + Bulk(kP + "user:2") +
                              Bulk(Tagged("user:", "u3", ""));
  CHECK(Reply(ReplyRule::kKeyList, backend, "user:*") ==
        "*3\r\n" + Bulk("user:1") + Bulk("user:2") + Bulk("user:{u3}"));
  // No pattern: every name of the namespace, foreign ones dropped.
  CHECK(Reply(ReplyRule::kKeyList, backend) ==
        "*4\r\n" + Bulk("user:1") + Bulk("cart:1") + Bulk("user:2") + Bulk("user:{u3}"));
  CHECK(Reply(ReplyRule::kKeyList, backend, "*") ==
        "*4\r\n" + Bulk("user:1") + Bulk("cart:1") + Bulk("user:2") + Bulk("user:{u3}"));
  // The pattern sees the client's names: a tag pattern matches as it would directly.
  CHECK(Reply(ReplyRule::kKeyList, backend, "*{u3}") == "*1\r\n" + Bulk("user:{u3}"));
  CHECK(Reply(ReplyRule::kKeyList, backend, "shop@*") == "*0\r\n");
  CHECK(Reply(ReplyRule::kKeyList, "*0\r\n", "user:*") == "*0\r\n");
}

TEST_CASE("rewriter: the empty key is kept only without a pattern") {
  // Redis's stringmatchlen("*", "") is false; KEYS and SCAN special-case a lone
  // "*", and so do keyfence's callers, which pass an empty pattern for it.
  const std::string backend = "*2\r\n" + Bulk(kP) + Bulk(kP + "a");
  CHECK(Reply(ReplyRule::kKeyList, backend) == "*2\r\n" + Bulk("") + Bulk("a"));
  CHECK(Reply(ReplyRule::kKeyList, backend, "*") == "*1\r\n" + Bulk("a"));
}

TEST_CASE("rewriter: KEYS reply names may be binary and RESP3 sets keep their type") {
  CHECK(Reply(ReplyRule::kKeyList, "*1\r\n" + Bulk(kP + std::string("a\r\n\0", 4))) ==
        "*1\r\n" + Bulk(std::string("a\r\n\0", 4)));
  CHECK(Reply(ReplyRule::kKeyList, "~2\r\n" + Bulk(kP + "a") + Bulk(kP + "b"), "", 3) ==
        "~2\r\n" + Bulk("a") + Bulk("b"));
}

TEST_CASE("rewriter: SCAN reply keeps the cursor and filters the names") {
  const std::string backend = "*2\r\n" + Bulk("1792") + "*4\r\n" + Bulk(kP + "a:1") +
                              Bulk(kP + "b:1") + Bulk("other") + Bulk(kP + "a:2");
  CHECK(Reply(ReplyRule::kScan, backend, "a:*") ==
        "*2\r\n" + Bulk("1792") + "*2\r\n" + Bulk("a:1") + Bulk("a:2"));
  CHECK(Reply(ReplyRule::kScan, backend) ==
        "*2\r\n" + Bulk("1792") + "*3\r\n" + Bulk("a:1") + Bulk("b:1") + Bulk("a:2"));
  CHECK(Reply(ReplyRule::kScan, "*2\r\n" + Bulk("0") + "*0\r\n") ==
        "*2\r\n" + Bulk("0") + "*0\r\n");
  // Not [cursor, names]: an error for the client, never the raw names.
  CHECK(Reply(ReplyRule::kScan, "*1\r\n" + Bulk("0")) == kUnexpected);
  CHECK(Reply(ReplyRule::kScan, "*2\r\n" + Bulk("0") + Bulk(kP + "a")) == kUnexpected);
}

TEST_CASE("rewriter: BLPOP / BRPOP reply names the key first") {
  CHECK(Reply(ReplyRule::kFirstIsKey, "*2\r\n" + Bulk(kP + "queue") + Bulk("job 1")) ==
        "*2\r\n" + Bulk("queue") + Bulk("job 1"));
  CHECK(Reply(ReplyRule::kFirstIsKey, "*2\r\n" + Bulk(Tagged("q", "t", "")) + Bulk(kP + "v")) ==
        "*2\r\n" + Bulk("q{t}") + Bulk(kP + "v"));  // the value is data: untouched
  // Timeout: nil passes in both protocols.
  CHECK(Reply(ReplyRule::kFirstIsKey, "*-1\r\n") == "*-1\r\n");
  CHECK(Reply(ReplyRule::kFirstIsKey, "_\r\n", "", 3) == "_\r\n");
  // A key outside the namespace is never shown.
  CHECK(Reply(ReplyRule::kFirstIsKey, "*2\r\n" + Bulk("shop@billing:q") + Bulk("v")) ==
        kUnexpected);
}

TEST_CASE("rewriter: BZPOPMIN reply in RESP2 and RESP3") {
  CHECK(Reply(ReplyRule::kFirstIsKey, "*3\r\n" + Bulk(kP + "z") + Bulk("m") + Bulk("1.5")) ==
        "*3\r\n" + Bulk("z") + Bulk("m") + Bulk("1.5"));
  CHECK(Reply(ReplyRule::kFirstIsKey, "*3\r\n" + Bulk(kP + "z") + Bulk("m") + ",1.5\r\n", "", 3) ==
        "*3\r\n" + Bulk("z") + Bulk("m") + ",1.5\r\n");
}

TEST_CASE("rewriter: LMPOP / ZMPOP reply is [key, elements]") {
  CHECK(Reply(ReplyRule::kFirstIsKey,
              "*2\r\n" + Bulk(Tagged("", "t", "l")) + "*2\r\n" + Bulk("a") + Bulk("b")) ==
        "*2\r\n" + Bulk("{t}l") + "*2\r\n" + Bulk("a") + Bulk("b"));
  CHECK(Reply(ReplyRule::kFirstIsKey,
              "*2\r\n" + Bulk(kP + "z") + "*1\r\n*2\r\n" + Bulk("m") + ",2\r\n", "",
              3) == "*2\r\n" + Bulk("z") + "*1\r\n*2\r\n" + Bulk("m") + ",2\r\n");
}

TEST_CASE("rewriter: XREAD reply in RESP2 is an array of [key, entries] pairs") {
  const std::string entries = "*1\r\n*2\r\n" + Bulk("1-0") + "*2\r\n" + Bulk("f") + Bulk("v");
  const std::string backend =
      "*2\r\n*2\r\n" + Bulk(kP + "a") + entries + "*2\r\n" + Bulk(Tagged("b", "t", "")) + "*0\r\n";
  CHECK(Reply(ReplyRule::kStreams, backend) ==
        "*2\r\n*2\r\n" + Bulk("a") + entries + "*2\r\n" + Bulk("b{t}") + "*0\r\n");
  CHECK(Reply(ReplyRule::kStreams, "*-1\r\n") == "*-1\r\n");
}

TEST_CASE("rewriter: XREAD reply in RESP3 is a map of key to entries") {
  const std::string entries = "*1\r\n*2\r\n" + Bulk("1-0") + "*2\r\n" + Bulk("f") + Bulk("v");
  const std::string backend = "%2\r\n" + Bulk(kP + "a") + entries + Bulk(kP + "b") + "*0\r\n";
  CHECK(Reply(ReplyRule::kStreams, backend, "", 3) ==
        "%2\r\n" + Bulk("a") + entries + Bulk("b") + "*0\r\n");
  CHECK(Reply(ReplyRule::kStreams, "_\r\n", "", 3) == "_\r\n");
  CHECK(Reply(ReplyRule::kStreams, "%1\r\n" + Bulk("shop@billing:a") + entries, "", 3) ==
        kUnexpected);
}

TEST_CASE("rewriter: PUBSUB NUMSUB reply in RESP2 and RESP3") {
  CHECK(Reply(ReplyRule::kNumsub,
              "*4\r\n" + Bulk(kP + "a") + ":1\r\n" + Bulk(kP + "{b}") + ":0\r\n") ==
        "*4\r\n" + Bulk("a") + ":1\r\n" + Bulk("{b}") + ":0\r\n");
  CHECK(Reply(ReplyRule::kNumsub, "%2\r\n" + Bulk(kP + "a") + ":1\r\n" + Bulk(kP + "b") + ":0\r\n",
              "", 3) == "%2\r\n" + Bulk("a") + ":1\r\n" + Bulk("b") + ":0\r\n");
  CHECK(Reply(ReplyRule::kNumsub, "*0\r\n") == "*0\r\n");
}

TEST_CASE("rewriter: PUBSUB CHANNELS reply is stripped and filtered") {
  const std::string backend =
      "*3\r\n" + Bulk(kP + "news.eu") + Bulk("shop@billing:news.us") + Bulk(kP + "chat");
  CHECK(Reply(ReplyRule::kChannelList, backend, "news.*") == "*1\r\n" + Bulk("news.eu"));
  CHECK(Reply(ReplyRule::kChannelList, backend) == "*2\r\n" + Bulk("news.eu") + Bulk("chat"));
}

TEST_CASE("rewriter: pub/sub message frames in RESP2 and RESP3") {
  // The payload is data: even a prefix inside it stays.
  CHECK(Reply(ReplyRule::kPubSub,
              "*3\r\n" + Bulk("message") + Bulk(kP + "news") + Bulk("hi " + kP)) ==
        "*3\r\n" + Bulk("message") + Bulk("news") + Bulk("hi " + kP));
  CHECK(Reply(ReplyRule::kPubSub, ">3\r\n" + Bulk("message") + Bulk(kP + "{eu}") + Bulk("hi"), "",
              3) == ">3\r\n" + Bulk("message") + Bulk("{eu}") + Bulk("hi"));
  CHECK(Reply(ReplyRule::kPubSub,
              "*4\r\n" + Bulk("pmessage") + Bulk(kP + "n*") + Bulk(kP + "news") + Bulk("hi")) ==
        "*4\r\n" + Bulk("pmessage") + Bulk("n*") + Bulk("news") + Bulk("hi"));
  CHECK(Reply(ReplyRule::kPubSub,
              ">4\r\n" + Bulk("pmessage") + Bulk(kP + "n*") + Bulk(kP + "news") + Bulk("hi"), "",
              3) == ">4\r\n" + Bulk("pmessage") + Bulk("n*") + Bulk("news") + Bulk("hi"));
  // Shard channels follow the key rule.
  CHECK(Reply(ReplyRule::kPubSub,
              "*3\r\n" + Bulk("smessage") + Bulk(Tagged("", "t", "c")) + Bulk("hi")) ==
        "*3\r\n" + Bulk("smessage") + Bulk("{t}c") + Bulk("hi"));
  CHECK(Reply(ReplyRule::kPubSub,
              ">3\r\n" + Bulk("smessage") + Bulk(Tagged("", "t", "c")) + Bulk("hi"), "",
              3) == ">3\r\n" + Bulk("smessage") + Bulk("{t}c") + Bulk("hi"));
}

TEST_CASE("rewriter: pub/sub subscription acks in RESP2 and RESP3") {
  CHECK(Reply(ReplyRule::kPubSub, "*3\r\n" + Bulk("subscribe") + Bulk(kP + "a") + ":1\r\n") ==
        "*3\r\n" + Bulk("subscribe") + Bulk("a") + ":1\r\n");
  CHECK(Reply(ReplyRule::kPubSub, ">3\r\n" + Bulk("subscribe") + Bulk(kP + "a") + ":1\r\n", "",
              3) == ">3\r\n" + Bulk("subscribe") + Bulk("a") + ":1\r\n");
  CHECK(Reply(ReplyRule::kPubSub, "*3\r\n" + Bulk("psubscribe") + Bulk(kP + "n*") + ":2\r\n") ==
        "*3\r\n" + Bulk("psubscribe") + Bulk("n*") + ":2\r\n");
  CHECK(Reply(ReplyRule::kPubSub,
              "*3\r\n" + Bulk("ssubscribe") + Bulk(Tagged("", "t", "")) + ":1\r\n") ==
        "*3\r\n" + Bulk("ssubscribe") + Bulk("{t}") + ":1\r\n");
  CHECK(Reply(ReplyRule::kPubSub, "*3\r\n" + Bulk("punsubscribe") + Bulk(kP + "n*") + ":0\r\n") ==
        "*3\r\n" + Bulk("punsubscribe") + Bulk("n*") + ":0\r\n");
  // UNSUBSCRIBE with no subscriptions left: a nil channel passes.
  CHECK(Reply(ReplyRule::kPubSub, "*3\r\n" + Bulk("unsubscribe") + "$-1\r\n:0\r\n") ==
        "*3\r\n" + Bulk("unsubscribe") + "$-1\r\n:0\r\n");
  CHECK(Reply(ReplyRule::kPubSub, ">3\r\n" + Bulk("unsubscribe") + "_\r\n:0\r\n", "", 3) ==
        ">3\r\n" + Bulk("unsubscribe") + "_\r\n:0\r\n");
}

TEST_CASE("rewriter: pub/sub frames never show a foreign channel") {
  CHECK(Reply(ReplyRule::kPubSub,
              "*3\r\n" + Bulk("message") + Bulk("shop@billing:news") + Bulk("hi")) ==
        "*3\r\n" + Bulk("message") + Bulk("") + Bulk("hi"));
}

TEST_CASE("rewriter: other pub/sub-mode replies pass") {
  CHECK(Reply(ReplyRule::kPubSub, "+OK\r\n") == "+OK\r\n");
  CHECK(Reply(ReplyRule::kPubSub, "*2\r\n" + Bulk("pong") + Bulk("")) ==
        "*2\r\n" + Bulk("pong") + Bulk(""));
}

TEST_CASE("rewriter: RANDOMKEY reply is stripped; a foreign name becomes nil") {
  CHECK(Reply(ReplyRule::kSingleKey, Bulk(kP + "k")) == Bulk("k"));
  CHECK(Reply(ReplyRule::kSingleKey, Bulk(Tagged("", "t", "k"))) == Bulk("{t}k"));
  CHECK(Reply(ReplyRule::kSingleKey, Bulk("other")) == "$-1\r\n");
  CHECK(Reply(ReplyRule::kSingleKey, Bulk("other"), "", 3) == "_\r\n");
  CHECK(Reply(ReplyRule::kSingleKey, "$-1\r\n") == "$-1\r\n");
}

TEST_CASE("rewriter: error, nil and integer replies pass through every rule") {
  const ReplyRule rules[] = {ReplyRule::kNone,       ReplyRule::kKeyList, ReplyRule::kScan,
                             ReplyRule::kFirstIsKey, ReplyRule::kStreams, ReplyRule::kChannelList,
                             ReplyRule::kNumsub,     ReplyRule::kPubSub,  ReplyRule::kSingleKey,
                             ReplyRule::kConfigGet};
  const std::string frames[] = {"-ERR boom\r\n",
                                "-WRONGTYPE Operation against a key\r\n",
                                "!9\r\nSYNTAX no\r\n",
                                "$-1\r\n",
                                "*-1\r\n",
                                "_\r\n",
                                ":7\r\n"};
  for (ReplyRule rule : rules) {
    for (const std::string& frame : frames) {
      INFO("rule " << static_cast<int>(rule) << " frame " << frame);
      CHECK(Reply(rule, frame) == frame);
      CHECK(Reply(rule, frame, "", 3) == frame);
    }
  }
}

TEST_CASE("rewriter: kNone copies the frame unparsed") {
  CHECK(Reply(ReplyRule::kNone, "*1\r\n" + Bulk(kP + "a")) == "*1\r\n" + Bulk(kP + "a"));
}

TEST_CASE("rewriter: unexpected shapes become an error, never raw names") {
  CHECK(Reply(ReplyRule::kKeyList, "+OK\r\n") == kUnexpected);
  CHECK(Reply(ReplyRule::kKeyList, "*2\r\n$1\r\na\r\n") == kUnexpected);  // truncated
  CHECK(Reply(ReplyRule::kFirstIsKey, "*0\r\n") == kUnexpected);
  CHECK(Reply(ReplyRule::kFirstIsKey, "*2\r\n:1\r\n:2\r\n") == kUnexpected);
  CHECK(Reply(ReplyRule::kStreams, "*1\r\n" + Bulk(kP + "a")) == kUnexpected);
  CHECK(Reply(ReplyRule::kNumsub, "*2\r\n" + Bulk("foreign") + ":1\r\n") == kUnexpected);
  CHECK(Reply(ReplyRule::kSingleKey, "*1\r\n" + Bulk(kP + "a")) == kUnexpected);
}

TEST_CASE("rewriter: a RESP3 attribute before a name list does not leak names") {
  const std::string out = Reply(
      ReplyRule::kKeyList,
      "|1\r\n+key-popularity\r\n*2\r\n" + Bulk(kP + "a") + ":1\r\n" + "*1\r\n" + Bulk(kP + "a"), "",
      3);
  CHECK(out.find(kP) == std::string::npos);
  CHECK(out.size() >= 11);
  CHECK(out.substr(out.size() - 11) == "*1\r\n" + Bulk("a"));
}

// A reply nested `depth` arrays deep around one integer, as EVAL returns for a
// deeply nested Lua table.
std::string Nested(int depth) {
  std::string s;
  s.reserve(static_cast<size_t>(depth) * 4 + 4);
  for (int i = 0; i < depth; ++i) s += "*1\r\n";
  return s + ":1\r\n";
}

// Runs f on a thread with a 256 KiB stack and returns its result: a walk that
// recursed once per level of a deep reply overflows it (the test binary
// crashes), where the main thread's 8 MiB stack might just hold.
std::string OnSmallStack(const std::function<std::string()>& f) {
  std::string out;
  std::function<void()> body = [&] { out = f(); };
  pthread_attr_t attr;
  REQUIRE(pthread_attr_init(&attr) == 0);
  REQUIRE(pthread_attr_setstacksize(&attr, 256 * 1024) == 0);
  pthread_t t;
  auto run = [](void* p) -> void* {
    (*static_cast<std::function<void()>*>(p))();
    return nullptr;
  };
  const int rc = pthread_create(&t, &attr, run, &body);
  pthread_attr_destroy(&attr);
  REQUIRE(rc == 0);
  REQUIRE(pthread_join(t, nullptr) == 0);
  return out;
}

TEST_CASE("rewriter: replies nested 10,000 and 100,000 deep, no recursion on depth") {
  for (int depth : {10000, 100000}) {
    CAPTURE(depth);
    const std::string deep = Nested(depth);
    auto reply = [&](ReplyRule rule, const std::string& frame, int proto = 2) {
      return OnSmallStack([&] { return Reply(rule, frame, "", proto); });
    };
    // EVAL / EVALSHA (no reply rule): the frame passes as it is.
    CHECK(reply(ReplyRule::kNone, deep) == deep);
    // Rules that rewrite names around a deep value copy the value exactly.
    CHECK(reply(ReplyRule::kPubSub, deep) == deep);
    CHECK(reply(ReplyRule::kPubSub, "*3\r\n" + Bulk("message") + Bulk(kP + "ch") + deep) ==
          "*3\r\n" + Bulk("message") + Bulk("ch") + deep);
    CHECK(reply(ReplyRule::kFirstIsKey, "*2\r\n" + Bulk(kP + "q") + deep) ==
          "*2\r\n" + Bulk("q") + deep);
    CHECK(reply(ReplyRule::kStreams, "%1\r\n" + Bulk(kP + "s") + deep, 3) ==
          "%1\r\n" + Bulk("s") + deep);
    CHECK(reply(ReplyRule::kNumsub, "*2\r\n" + Bulk(kP + "ch") + deep) ==
          "*2\r\n" + Bulk("ch") + deep);
    // Name lists drop a value that is not a name.
    CHECK(reply(ReplyRule::kKeyList, "*2\r\n" + Bulk(kP + "a") + deep) == "*1\r\n" + Bulk("a"));
    CHECK(reply(ReplyRule::kScan, "*2\r\n" + Bulk("0") + "*2\r\n" + Bulk(kP + "a") + deep) ==
          "*2\r\n" + Bulk("0") + "*1\r\n" + Bulk("a"));
    CHECK(reply(ReplyRule::kSingleKey, deep) == kUnexpected);
    CHECK(OnSmallStack([&] {
            std::string out;
            FilterConfigGet("*2\r\n" + Bulk("timeout") + deep, out);
            return out;
          }) == "*2\r\n" + Bulk("timeout") + deep);
    // EVAL queued in MULTI: EXEC's other elements are still rewritten.
    const std::vector<std::pair<ReplyRule, std::string>> rules = {{ReplyRule::kNone, ""},
                                                                   {ReplyRule::kKeyList, ""}};
    CHECK(OnSmallStack([&] {
            std::string out;
            RewriteExec("*2\r\n" + deep + "*1\r\n" + Bulk(kP + "k"), rules,
                        {kP, "", 2}, out);
            return out;
          }) == "*2\r\n" + deep + "*1\r\n" + Bulk("k"));
  }
}

}  // namespace
}  // namespace keyfence::tenancy

namespace keyfence::tenancy {
namespace {
TEST_CASE("rewrite: a redirect error never reaches the client with a backend address") {
  for (std::string_view e : {"-MOVED 3999 127.0.0.1:6381\r\n", "-ASK 3999 10.0.0.7:6381\r\n"}) {
    std::string out;
    AppendErrorStripped(e, "shop@orders:", out);
    CHECK(out == "-TRYAGAIN keyfence: the key's slot moved to another node; try again\r\n");
    CHECK(out.find("6381") == std::string::npos);
  }
  std::string out;
  AppendErrorStripped("-ERR no such key shop@orders:k\r\n", "shop@orders:", out);
  CHECK(out == "-ERR no such key k\r\n");
}
}  // namespace
}  // namespace keyfence::tenancy
