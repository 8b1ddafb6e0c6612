// The webhook's pure half against the AdmissionReview fixtures: for each case the
// response fields, and the pod after applying the decoded JSON Patch, are compared with
// fixtures/<case>.expected.json (as JSON values).
#include "inject/review.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

using keyfence::inject::HandleMutate;
using keyfence::inject::HttpResult;
using keyfence::inject::InjectOptions;
using nlohmann::json;

namespace {

const InjectOptions kOptions{"registry.example.com/keyfence:0.1.0", 9121};

std::string ReadFixture(const std::string& name) {
  std::ifstream in(std::string(KF_INJECT_FIXTURES) + "/" + name, std::ios::binary);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// An independent RFC 4648 decoder (not the code under test); throws on bad input.
std::string Base64Decode(const std::string& in) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  REQUIRE(in.size() % 4 == 0);
  std::string out;
  for (size_t i = 0; i < in.size(); i += 4) {
    unsigned v = 0;
    int pad = 0;
    for (size_t j = 0; j < 4; ++j) {
      const char c = in[i + j];
      unsigned d = 0;
      if (c == '=') {
        REQUIRE(i + 4 == in.size());
        ++pad;
      } else {
        const size_t pos = kAlphabet.find(c);
        REQUIRE(pos != std::string::npos);
        REQUIRE(pad == 0);
        d = static_cast<unsigned>(pos);
      }
      v = (v << 6) | d;
    }
    out.push_back(static_cast<char>((v >> 16) & 0xff));
    if (pad < 2) out.push_back(static_cast<char>((v >> 8) & 0xff));
    if (pad < 1) out.push_back(static_cast<char>(v & 0xff));
  }
  return out;
}

// The decoded patch of `response`, checked to be a list of "add" operations.
json DecodedPatch(const json& response) {
  REQUIRE(response.at("patchType") == "JSONPatch");
  const json patch = json::parse(Base64Decode(response.at("patch").get<std::string>()));
  REQUIRE(patch.is_array());
  REQUIRE_FALSE(patch.empty());
  for (const json& op : patch) {
    INFO(op.dump());
    REQUIRE(op.at("op") == "add");
    REQUIRE(op.at("path").get<std::string>().front() == '/');
    REQUIRE(op.contains("value"));
  }
  return patch;
}

// Runs one fixture case through HandleMutate and checks it against its expectations.
void RunCase(const std::string& name) {
  INFO("fixture " << name);
  const std::string body = ReadFixture(name + ".json");
  const json expected = json::parse(ReadFixture(name + ".expected.json"));
  const HttpResult r = HandleMutate(body, kOptions);
  if (expected.contains("http_status")) {
    CHECK(r.status == expected["http_status"].get<int>());
    CHECK(r.content_type.rfind("text/plain", 0) == 0);
    CHECK_THAT(r.body, Catch::Contains(expected["body_contains"].get<std::string>()));
    return;
  }
  REQUIRE(r.status == 200);
  CHECK(r.content_type == "application/json");
  const json review = json::parse(body);
  const json answer = json::parse(r.body);
  CHECK(answer.at("apiVersion") == "admission.k8s.io/v1");
  CHECK(answer.at("kind") == "AdmissionReview");
  json response = answer.at("response");
  CHECK(response.at("uid") == review["request"]["uid"]);
  if (expected.contains("pod")) {
    const json patch = DecodedPatch(response);
    const json patched = review["request"]["object"].patch(patch);
    INFO("patch: " << patch.dump());
    CHECK(patched == expected["pod"]);
    if (patched != expected["pod"]) {
      WARN("diff (expected -> got): " << json::diff(expected["pod"], patched).dump());
    }
  } else {
    CHECK_FALSE(response.contains("patch"));
    CHECK_FALSE(response.contains("patchType"));
  }
  response.erase("patch");
  CHECK(response == expected["response"]);
}

}  // namespace

TEST_CASE("inject: fixtures give the expected response and patched pod") {
  const std::string name = GENERATE(
      as<std::string>{}, "plain", "existing", "injected_annotation", "keyfence_container",
      "no_annotation", "inject_not_true", "own_redis_url", "unix", "missing_tenant", "bad_tenant",
      "non_pod", "update", "bad_listen", "volume_clash", "malformed", "not_review");
  RunCase(name);
}

TEST_CASE("inject: lists the pod lacks are added whole, present ones appended or prepended") {
  const json review = json::parse(ReadFixture("plain.json"));
  const json response = json::parse(HandleMutate(review.dump(), kOptions).body)["response"];
  json paths = json::array();
  for (const json& op : DecodedPatch(response)) paths.push_back(op["path"]);
  CHECK(paths == json({"/metadata/annotations/keyfence.io~1injected", "/spec/initContainers",
                       "/spec/volumes", "/spec/containers/0/env"}));

  const json existing = json::parse(ReadFixture("existing.json"));
  const json r2 = json::parse(HandleMutate(existing.dump(), kOptions).body)["response"];
  paths = json::array();
  for (const json& op : DecodedPatch(r2)) paths.push_back(op["path"]);
  CHECK(paths == json({"/metadata/annotations/keyfence.io~1injected", "/spec/initContainers/0",
                       "/spec/volumes/-", "/spec/containers/0/env/-", "/spec/containers/1/env"}));
}

TEST_CASE("inject: --image and --admin-port reach the sidecar") {
  const InjectOptions options{"keyfence:9.9.9", 9200};
  const json review = json::parse(ReadFixture("plain.json"));
  const json response = json::parse(HandleMutate(review.dump(), options).body)["response"];
  const json pod = review["request"]["object"].patch(DecodedPatch(response));
  const json& sidecar = pod["spec"]["initContainers"][0];
  CHECK(sidecar["image"] == "keyfence:9.9.9");
  CHECK(sidecar["ports"] ==
        json::parse(R"([{"name": "keyfence-admin", "containerPort": 9200, "protocol": "TCP"}])"));
  CHECK(sidecar["readinessProbe"]["httpGet"]["port"] == "keyfence-admin");
}

TEST_CASE("inject: the same pod after the patch is left alone (idempotent)") {
  for (const char* name : {"plain", "existing", "unix", "own_redis_url"}) {
    INFO(name);
    json review = json::parse(ReadFixture(std::string(name) + ".json"));
    const json response = json::parse(HandleMutate(review.dump(), kOptions).body)["response"];
    review["request"]["object"] = review["request"]["object"].patch(DecodedPatch(response));
    const json again = json::parse(HandleMutate(review.dump(), kOptions).body)["response"];
    CHECK(again["allowed"] == true);
    CHECK_FALSE(again.contains("patch"));
    // Without the annotation the sidecar container alone is enough.
    review["request"]["object"]["metadata"]["annotations"].erase("keyfence.io/injected");
    const json third = json::parse(HandleMutate(review.dump(), kOptions).body)["response"];
    CHECK_FALSE(third.contains("patch"));
  }
}
