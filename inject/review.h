// The pure half of `keyfence inject`: an admission.k8s.io/v1 AdmissionReview request in,
// the AdmissionReview answer out (allowed or denied, with a base64 JSON Patch that adds
// the keyfence native sidecar). No I/O, no logging: the server (server.h) calls
// HandleMutate for each POST /mutate and logs the summary it returns.
//
// Contract (deploy/inject/README.md): only kind Pod (core group) with operation CREATE is
// mutated, and only when the pod has keyfence.io/inject: "true". Already injected pods
// (annotation keyfence.io/injected: "true", or a container or init container named
// keyfence) are allowed unchanged, so a re-invocation never injects twice.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "inject/sidecar.h"

namespace keyfence::inject {

// Limits on the POST /mutate body (checked by the server before parsing for the size, by
// HandleMutate for the nesting).
inline constexpr size_t kMaxReviewBytes = 4 * 1024 * 1024;
inline constexpr int kMaxJsonDepth = 64;

inline constexpr std::string_view kAdmissionApiVersion = "admission.k8s.io/v1";

// The webhook's answer to one AdmissionRequest.
struct Decision {
  bool allowed = true;
  int code = 0;          // denied only: status.code (400: the pod asks for something wrong)
  std::string message;   // denied only: status.message, naming the annotation or field
  nlohmann::json patch;  // allowed: the JSON Patch (an array), or null for no patch
  std::string summary;   // one line for the log: what was decided and why
};

// Decides for `request`, the "request" object of an AdmissionReview.
Decision Decide(const nlohmann::json& request, const InjectOptions& options);

// "" when `review` is a usable admission.k8s.io/v1 AdmissionReview request (an object
// with apiVersion, kind and a request object carrying a non-empty uid), else why not.
std::string CheckReview(const nlohmann::json& review);

// The AdmissionReview answer to `review` (which passed CheckReview): same apiVersion and
// kind, response.uid = request.uid, allowed, and status or patchType + patch (base64).
nlohmann::json Respond(const nlohmann::json& review, const Decision& decision);

// An HTTP answer for the server to send.
struct HttpResult {
  int status = 200;
  std::string content_type;
  std::string body;
  std::string log;  // one line describing the request and the outcome
};

// POST /mutate: `body` (at most kMaxReviewBytes, checked by the caller) -> 200 with the
// AdmissionReview answer, or 400 with a text message when the body is not JSON, is nested
// deeper than kMaxJsonDepth, or is not an AdmissionReview request.
HttpResult HandleMutate(std::string_view body, const InjectOptions& options);

// A JSON Pointer reference token (RFC 6901): '~' as "~0", '/' as "~1".
std::string EscapePointerToken(std::string_view token);

// Standard base64 with padding (RFC 4648), as Kubernetes expects for response.patch.
std::string Base64Encode(std::string_view data);

}  // namespace keyfence::inject
