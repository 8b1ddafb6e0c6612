// The checks behind the fixtures: names, quantities, annotations that deny, requests that
// are not AdmissionReviews, the JSON Pointer and base64 helpers, --listen parsing.
#include "inject/sidecar.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "inject/review.h"
#include "inject/run.h"

namespace inject = keyfence::inject;
using nlohmann::json;

namespace {

const inject::InjectOptions kOptions{"keyfence:test", 9121};

json Request(json annotations, json spec = json::parse(R"({"containers": [{"name": "app"}]})")) {
  return {{"uid", "u-1"},
          {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
          {"operation", "CREATE"},
          {"namespace", "shop"},
          {"object",
           {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata", {{"name", "p"}, {"annotations", std::move(annotations)}}},
            {"spec", std::move(spec)}}}};
}

json Inject(json extra = json::object()) {
  json a = {{"keyfence.io/inject", "true"}, {"keyfence.io/tenant", "orders"}};
  a.update(extra);
  return a;
}

}  // namespace

TEST_CASE("inject: tenant names") {
  CHECK(inject::IsValidTenant("orders"));
  CHECK(inject::IsValidTenant("Orders_2-b"));
  CHECK(inject::IsValidTenant(std::string(64, 'a')));
  CHECK(inject::IsValidTenant("_x"));
  CHECK_FALSE(inject::IsValidTenant(""));
  CHECK_FALSE(inject::IsValidTenant(std::string(65, 'a')));
  CHECK_FALSE(inject::IsValidTenant("__keyfence"));
  CHECK_FALSE(inject::IsValidTenant("a.b"));
  CHECK_FALSE(inject::IsValidTenant("a b"));
  CHECK_FALSE(inject::IsValidTenant("a:b"));
  CHECK_FALSE(inject::IsValidTenant("shop@orders"));
}

TEST_CASE("inject: ConfigMap names are DNS-1123 subdomains") {
  CHECK(inject::IsDns1123Subdomain("keyfence-orders"));
  CHECK(inject::IsDns1123Subdomain("a.b-c.d"));
  CHECK_FALSE(inject::IsDns1123Subdomain("keyfence-Orders"));
  CHECK_FALSE(inject::IsDns1123Subdomain("keyfence-my_app"));
  CHECK_FALSE(inject::IsDns1123Subdomain("-a"));
  CHECK_FALSE(inject::IsDns1123Subdomain("a..b"));
  CHECK_FALSE(inject::IsDns1123Subdomain(""));
  CHECK_FALSE(inject::IsDns1123Subdomain(std::string(254, 'a')));
}

TEST_CASE("inject: resource quantities") {
  CHECK(*inject::ParseQuantity("50m") == Approx(0.05));
  CHECK(*inject::ParseQuantity("1") == Approx(1));
  CHECK(*inject::ParseQuantity("0.5") == Approx(0.5));
  CHECK(*inject::ParseQuantity("32Mi") == Approx(32.0 * 1024 * 1024));
  CHECK(*inject::ParseQuantity("1Gi") == Approx(1024.0 * 1024 * 1024));
  CHECK(*inject::ParseQuantity("128M") == Approx(128e6));
  CHECK(*inject::ParseQuantity("1e3") == Approx(1000));
  CHECK(*inject::ParseQuantity("2E") == Approx(2e18));
  CHECK(*inject::ParseQuantity("1Ei") == Approx(1152921504606846976.0));
  for (const char* bad : {"", "m", "-1", "1x", "1 Mi", "1..2", "Mi", "1e", "1mi", "1e99999"}) {
    INFO(bad);
    CHECK_FALSE(inject::ParseQuantity(bad).has_value());
  }
}

TEST_CASE("inject: annotations that deny name the annotation") {
  struct Case {
    json extra;
    std::string message_part;
  };
  const Case cases[] = {
      {{{"keyfence.io/tenant", "a.b"}}, "keyfence.io/tenant: 'a.b' is not a valid tenant name"},
      {{{"keyfence.io/tenant", ""}}, "keyfence.io/tenant: '' is not a valid tenant name"},
      {{{"keyfence.io/tenant", "My_App"}}, "keyfence.io/config: 'keyfence-My_App' is not a valid"},
      {{{"keyfence.io/config", "Bad_Name"}}, "keyfence.io/config: 'Bad_Name'"},
      {{{"keyfence.io/listen", "TCP"}}, "keyfence.io/listen: 'TCP' is not tcp or unix"},
      {{{"keyfence.io/cpu", "lots"}}, "keyfence.io/cpu: 'lots' is not a Kubernetes resource"},
      {{{"keyfence.io/memory", "64"}, {"keyfence.io/memory-limit", "x"}},
       "keyfence.io/memory-limit: 'x'"},
      {{{"keyfence.io/memory", "256Mi"}},
       "keyfence.io/memory: request 256Mi is above the memory "
       "limit 128Mi (set keyfence.io/memory-limit)"},
  };
  for (const Case& c : cases) {
    INFO(c.extra.dump());
    const inject::Decision d = inject::Decide(Request(Inject(c.extra)), kOptions);
    CHECK_FALSE(d.allowed);
    CHECK(d.code == 400);
    CHECK_THAT(d.message, Catch::Contains(c.message_part));
    CHECK(d.patch.is_null());
  }
  // A tenant annotation that is not a string counts as missing.
  json a = Inject();
  a["keyfence.io/tenant"] = 42;
  const inject::Decision d = inject::Decide(Request(a), kOptions);
  CHECK_THAT(d.message, Catch::Contains("keyfence.io/tenant: annotation is required"));
}

TEST_CASE("inject: a memory limit annotation lifts the cap, an explicit config is used") {
  const inject::SpecResult r = inject::ReadSpec(Inject({{"keyfence.io/memory", "256Mi"},
                                                        {"keyfence.io/memory-limit", "1Gi"},
                                                        {"keyfence.io/tenant", "My_App"},
                                                        {"keyfence.io/config", "my-app"}}));
  REQUIRE(r.spec);
  CHECK(r.spec->tenant == "My_App");
  CHECK(r.spec->config_map == "my-app");
  CHECK(r.spec->memory == "256Mi");
  CHECK(r.spec->memory_limit == "1Gi");
  CHECK(r.spec->cpu == "50m");
  CHECK(r.spec->listen == inject::Listen::kTcp);
}

TEST_CASE("inject: pods the sidecar would break are denied") {
  // The admin port, or the tcp listener's 6379, already declared by a container.
  const json admin_clash =
      json::parse(R"({"containers": [{"name": "app", "ports": [{"containerPort": 9121}]}]})");
  inject::Decision d = inject::Decide(Request(Inject(), admin_clash), kOptions);
  CHECK_FALSE(d.allowed);
  CHECK_THAT(d.message, Catch::Contains("container \"app\" already uses port 9121"));
  const json redis = json::parse(
      R"({"containers": [{"name": "app"}], "initContainers": [{"name": "redis",
          "ports": [{"containerPort": 6379}]}]})");
  d = inject::Decide(Request(Inject(), redis), kOptions);
  CHECK_THAT(d.message, Catch::Contains("container \"redis\" already uses port 6379"));
  // Over a unix socket 6379 is free.
  d = inject::Decide(Request(Inject({{"keyfence.io/listen", "unix"}}), redis), kOptions);
  CHECK(d.allowed);
  CHECK(d.patch.is_array());

  d = inject::Decide(Request(Inject(), json::parse(R"({"volumes": [{"name": "keyfence-socket",
      "emptyDir": {}}], "containers": []})")),
                     kOptions);
  CHECK_THAT(d.message, Catch::Contains("volume named keyfence-socket"));
  d = inject::Decide(Request(Inject(), json::parse(R"({"containers": {"name": "x"}})")), kOptions);
  CHECK_THAT(d.message, Catch::Contains("spec.containers is not a list"));
  d = inject::Decide(Request(Inject(), json::parse(R"({"initContainers": [1]})")), kOptions);
  CHECK_THAT(d.message, Catch::Contains("spec.initContainers has an entry"));
  d = inject::Decide(Request(Inject(), json("spec")), kOptions);
  CHECK_THAT(d.message, Catch::Contains("no spec object"));
}

TEST_CASE("inject: only CREATE of core Pods is considered") {
  json r = Request(Inject());
  r["kind"]["group"] = "example.com";  // a custom resource that happens to be called Pod
  CHECK(inject::Decide(r, kOptions).patch.is_null());
  r = Request(Inject());
  r["operation"] = "DELETE";
  CHECK(inject::Decide(r, kOptions).patch.is_null());
  r = Request(Inject());
  r.erase("kind");
  CHECK(inject::Decide(r, kOptions).patch.is_null());
  r = Request(Inject());
  r.erase("object");
  const inject::Decision d = inject::Decide(r, kOptions);
  CHECK_FALSE(d.allowed);
  CHECK_THAT(d.message, Catch::Contains("request.object"));
  CHECK(inject::Decide(Request(Inject()), kOptions).patch.is_array());
}

TEST_CASE("inject: bodies that are not AdmissionReview requests get 400") {
  const json good = {{"apiVersion", "admission.k8s.io/v1"},
                     {"kind", "AdmissionReview"},
                     {"request", Request(Inject())}};
  CHECK(inject::CheckReview(good).empty());
  CHECK(inject::HandleMutate(good.dump(), kOptions).status == 200);
  struct Case {
    std::string body;
    std::string message_part;
  };
  json v1beta1 = good;
  v1beta1["apiVersion"] = "admission.k8s.io/v1beta1";
  json no_uid = good;
  no_uid["request"].erase("uid");
  json empty_uid = good;
  empty_uid["request"]["uid"] = "";
  json wrong_kind = good;
  wrong_kind["kind"] = "Pod";
  json no_request = good;
  no_request.erase("request");
  const Case cases[] = {
      {"", "not valid JSON"},
      {"[1, 2]", "not a JSON object"},
      {"\"x\"", "not a JSON object"},
      {v1beta1.dump(), "apiVersion is \"admission.k8s.io/v1beta1\""},
      {no_uid.dump(), "no uid"},
      {empty_uid.dump(), "no uid"},
      {wrong_kind.dump(), "kind is \"Pod\""},
      {no_request.dump(), "no request object"},
      {good.dump() + "}", "not valid JSON"},
      {std::string(200, '[') + std::string(200, ']'), "nested deeper than 64"},
  };
  for (const Case& c : cases) {
    INFO(c.body.substr(0, 80));
    const inject::HttpResult r = inject::HandleMutate(c.body, kOptions);
    CHECK(r.status == 400);
    CHECK_THAT(r.body, Catch::Contains(c.message_part));
    CHECK_THAT(r.log, Catch::Contains(c.message_part));
  }
  // Brackets inside strings do not count as nesting.
  json deep_string = good;
  deep_string["request"]["object"]["metadata"]["annotations"]["x"] = std::string(500, '[');
  CHECK(inject::HandleMutate(deep_string.dump(), kOptions).status == 200);
}

TEST_CASE("inject: Respond keeps apiVersion, kind and uid, a denial carries status") {
  const json review = {{"apiVersion", "admission.k8s.io/v1"},
                       {"kind", "AdmissionReview"},
                       {"request", Request(Inject({{"keyfence.io/listen", "x"}}))}};
  const inject::HttpResult r = inject::HandleMutate(review.dump(), kOptions);
  REQUIRE(r.status == 200);
  const json answer = json::parse(r.body);
  CHECK(answer["apiVersion"] == "admission.k8s.io/v1");
  CHECK(answer["kind"] == "AdmissionReview");
  CHECK(answer["response"] ==
        json({{"uid", "u-1"},
              {"allowed", false},
              {"status",
               {{"code", 400}, {"message", "keyfence.io/listen: 'x' is not tcp or unix"}}}}));
  CHECK_THAT(r.log, Catch::Contains("shop/p"));
  CHECK_THAT(r.log, Catch::Contains("denied: keyfence.io/listen"));
}

TEST_CASE("inject: JSON Pointer tokens and base64") {
  CHECK(inject::EscapePointerToken("keyfence.io/injected") == "keyfence.io~1injected");
  CHECK(inject::EscapePointerToken("a~b/c~/") == "a~0b~1c~0~1");
  CHECK(inject::EscapePointerToken("plain") == "plain");
  // RFC 4648 section 10 test vectors.
  CHECK(inject::Base64Encode("") == "");
  CHECK(inject::Base64Encode("f") == "Zg==");
  CHECK(inject::Base64Encode("fo") == "Zm8=");
  CHECK(inject::Base64Encode("foo") == "Zm9v");
  CHECK(inject::Base64Encode("foob") == "Zm9vYg==");
  CHECK(inject::Base64Encode("fooba") == "Zm9vYmE=");
  CHECK(inject::Base64Encode("foobar") == "Zm9vYmFy");
  CHECK(inject::Base64Encode(std::string("\xff\x00\xfe", 3)) == "/wD+");
  // No line breaks however long (EVP_EncodeBlock, not the BIO filter).
  CHECK(inject::Base64Encode(std::string(1000, 'x')).find('\n') == std::string::npos);
}

TEST_CASE("inject: --listen parsing") {
  CHECK(inject::ParseListen("127.0.0.1:8443")->port() == 8443);
  CHECK(inject::ParseListen("0.0.0.0:1")->address().to_string() == "0.0.0.0");
  CHECK(inject::ParseListen("[::]:8443")->address().is_v6());
  CHECK(inject::ParseListen("[fd00::1]:65535")->port() == 65535);
  for (const char* bad :
       {"", "8443", ":8443", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
        "127.0.0.1:84a3", "localhost:8443", "::1:8443", "[::1]", "[::1]8443", "[127.0.0.1]:8443",
        "1.2.3:8443", "127.0.0.1:-1", "127.0.0.1:123456"}) {
    INFO(bad);
    CHECK_FALSE(inject::ParseListen(bad).has_value());
    CHECK_THAT(inject::CheckListen(bad), Catch::Contains("is not HOST:PORT"));
  }
  CHECK(inject::CheckListen("127.0.0.1:8443").empty());
}
