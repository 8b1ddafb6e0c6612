#include "inject/review.h"

#include <openssl/evp.h>

#include <optional>
#include <utility>
#include <vector>

namespace keyfence::inject {

using nlohmann::json;

namespace {

const json kNull;

// obj[key], or null when obj is not an object or has no such member.
const json& Member(const json& obj, std::string_view key) {
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

bool StringIs(const json& value, std::string_view want) {
  return value.is_string() && value.get_ref<const std::string&>() == want;
}

Decision Allow(std::string summary) {
  Decision d;
  d.summary = std::move(summary);
  return d;
}

Decision Deny(std::string message) {
  Decision d;
  d.allowed = false;
  d.code = 400;
  d.summary = "denied: " + message;
  d.message = std::move(message);
  return d;
}

// The list at pod.spec[field]: absent (nullopt, no error), a list, or an error.
struct ListField {
  const json* list = nullptr;  // null: absent
  std::string error;
};

ListField SpecList(const json& spec, std::string_view field) {
  ListField f;
  const json& v = Member(spec, field);
  if (v.is_null()) return f;
  if (!v.is_array()) {
    f.error = "spec." + std::string(field) + " is not a list";
    return f;
  }
  for (const json& item : v) {
    if (!item.is_object()) {
      f.error = "spec." + std::string(field) + " has an entry that is not an object";
      return f;
    }
  }
  f.list = &v;
  return f;
}

bool HasNamed(const json* list, std::string_view name) {
  if (list == nullptr) return false;
  for (const json& item : *list) {
    if (StringIs(Member(item, "name"), name)) return true;
  }
  return false;
}

// The pod's containers and init containers, checked once.
struct PodLists {
  ListField containers, init_containers, volumes;
  std::string error;  // the first error of the three
};

PodLists ReadLists(const json& spec) {
  PodLists p{SpecList(spec, "containers"), SpecList(spec, "initContainers"),
             SpecList(spec, "volumes"), ""};
  for (const ListField* f : {&p.containers, &p.init_containers, &p.volumes}) {
    if (p.error.empty()) p.error = f->error;
  }
  return p;
}

// "" or why the sidecar cannot be added to this pod without breaking it.
std::string FindClash(const PodLists& pod, const SidecarSpec& spec, const InjectOptions& opts) {
  for (std::string_view volume : {kConfigVolume, kSocketVolume}) {
    if (HasNamed(pod.volumes.list, volume)) {
      return "spec.volumes already has a volume named " + std::string(volume) +
             " but the pod has no keyfence sidecar: rename the volume (the name is reserved "
             "for the injected sidecar)";
    }
  }
  for (const ListField* f : {&pod.containers, &pod.init_containers}) {
    if (f->list == nullptr) continue;
    for (const json& c : *f->list) {
      const json& ports = Member(c, "ports");
      if (!ports.is_array()) continue;
      for (const json& port : ports) {
        const json& number = Member(port, "containerPort");
        if (!number.is_number_integer()) continue;
        const int n = number.get<int>();
        if (n == opts.admin_port || (spec.listen == Listen::kTcp && n == kRedisPort)) {
          return "container " + Member(c, "name").dump() + " already uses port " +
                 std::to_string(n) + ", which the keyfence sidecar listens on in this pod";
        }
      }
    }
  }
  return "";
}

// Appends `values` to the list at `path`: one "add" of the whole list when the pod has
// none (`present` false), else one "add" at index `index` ("-" = the end) per value.
void AddToList(json& patch, const std::string& path, bool present, std::vector<json> values,
               const std::string& index = "-") {
  if (values.empty()) return;
  if (!present) {
    patch.push_back({{"op", "add"}, {"path", path}, {"value", json(std::move(values))}});
    return;
  }
  for (json& v : values) {
    patch.push_back({{"op", "add"}, {"path", path + "/" + index}, {"value", std::move(v)}});
  }
}

bool HasEnv(const json& container, std::string_view name) {
  const json& env = Member(container, "env");
  if (!env.is_array()) return false;
  for (const json& e : env) {
    if (StringIs(Member(e, "name"), name)) return true;
  }
  return false;
}

// The JSON Patch for a pod that gets the sidecar.
json BuildPatch(const json& pod, const PodLists& lists, const SidecarSpec& spec,
                const InjectOptions& opts) {
  json patch = json::array();
  const json& annotations = Member(Member(pod, "metadata"), "annotations");
  if (annotations.is_object()) {
    patch.push_back({{"op", "add"},
                     {"path", "/metadata/annotations/" + EscapePointerToken(kAnnotationInjected)},
                     {"value", "true"}});
  } else {  // unreachable through Decide (the inject annotation is there), kept total
    patch.push_back({{"op", "add"},
                     {"path", "/metadata/annotations"},
                     {"value", {{kAnnotationInjected, "true"}}}});
  }
  // Index 0: the sidecar starts before any other init container (which may need Redis).
  AddToList(patch, "/spec/initContainers", lists.init_containers.list != nullptr,
            {SidecarContainer(spec, opts)}, "0");
  AddToList(patch, "/spec/volumes", lists.volumes.list != nullptr, SidecarVolumes(spec));
  if (lists.containers.list == nullptr) return patch;
  for (size_t i = 0; i < lists.containers.list->size(); ++i) {
    const json& c = (*lists.containers.list)[i];
    const std::string base = "/spec/containers/" + std::to_string(i);
    if (!HasEnv(c, kRedisUrlEnv)) {
      AddToList(patch, base + "/env", Member(c, "env").is_array(),
                {{{"name", kRedisUrlEnv}, {"value", RedisUrl(spec.listen)}}});
    }
    if (spec.listen == Listen::kUnix) {
      AddToList(patch, base + "/volumeMounts", Member(c, "volumeMounts").is_array(),
                {SocketMount()});
    }
  }
  return patch;
}

// Rejects bodies nested deeper than kMaxJsonDepth before they reach the parser (and the
// recursive parts of nlohmann::json).
bool NestedTooDeep(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

std::string PodName(const json& request) {
  const json& meta = Member(Member(request, "object"), "metadata");
  std::string name;
  if (Member(meta, "name").is_string()) {
    name = Member(meta, "name").get<std::string>();
  } else if (Member(meta, "generateName").is_string()) {
    name = Member(meta, "generateName").get<std::string>() + "*";
  } else if (Member(request, "name").is_string()) {
    name = Member(request, "name").get<std::string>();
  }
  const json& ns = Member(request, "namespace");
  return (ns.is_string() ? ns.get<std::string>() : std::string("?")) + "/" +
         (name.empty() ? std::string("?") : name);
}

}  // namespace

Decision Decide(const json& request, const InjectOptions& opts) {
  const json& kind = Member(request, "kind");
  const json& group = Member(kind, "group");
  if (!StringIs(Member(kind, "kind"), "Pod") || !(group.is_null() || StringIs(group, ""))) {
    return Allow("skipped: not a Pod");
  }
  if (!StringIs(Member(request, "operation"), "CREATE")) return Allow("skipped: not a CREATE");
  const json& pod = Member(request, "object");
  if (!pod.is_object()) return Deny("request.object is not a Pod object");
  const json& annotations = Member(Member(pod, "metadata"), "annotations");
  if (!StringIs(Member(annotations, kAnnotationInject), "true")) {
    return Allow("skipped: no keyfence.io/inject: \"true\"");
  }
  const json& spec = Member(pod, "spec");
  if (!spec.is_object()) return Deny("spec: the pod has no spec object");
  const PodLists lists = ReadLists(spec);
  if (!lists.error.empty()) return Deny(lists.error);
  if (StringIs(Member(annotations, kAnnotationInjected), "true") ||
      HasNamed(lists.containers.list, kContainerName) ||
      HasNamed(lists.init_containers.list, kContainerName)) {
    return Allow("skipped: already has the keyfence sidecar");
  }
  SpecResult read = ReadSpec(annotations);
  if (!read.spec) return Deny(read.error);
  if (std::string clash = FindClash(lists, *read.spec, opts); !clash.empty()) {
    return Deny(std::move(clash));
  }
  Decision d = Allow("injected: tenant " + read.spec->tenant + ", config " + read.spec->config_map +
                     ", listen " + (read.spec->listen == Listen::kTcp ? "tcp" : "unix"));
  d.patch = BuildPatch(pod, lists, *read.spec, opts);
  return d;
}

std::string CheckReview(const json& review) {
  if (!review.is_object()) return "the body is not a JSON object (an AdmissionReview)";
  const json& api = Member(review, "apiVersion");
  if (!StringIs(api, kAdmissionApiVersion)) {
    return "not an " + std::string(kAdmissionApiVersion) + " AdmissionReview: apiVersion is " +
           (api.is_null() ? std::string("missing") : api.dump());
  }
  const json& kind = Member(review, "kind");
  if (!StringIs(kind, "AdmissionReview")) {
    return "not an AdmissionReview: kind is " +
           (kind.is_null() ? std::string("missing") : kind.dump());
  }
  const json& request = Member(review, "request");
  if (!request.is_object()) return "the AdmissionReview has no request object";
  const json& uid = Member(request, "uid");
  if (!uid.is_string() || uid.get_ref<const std::string&>().empty()) {
    return "the AdmissionReview request has no uid";
  }
  return "";
}

json Respond(const json& review, const Decision& decision) {
  json response = {{"uid", review["request"]["uid"]}, {"allowed", decision.allowed}};
  if (!decision.allowed) {
    response["status"] = {{"code", decision.code}, {"message", decision.message}};
  } else if (!decision.patch.is_null()) {
    response["patchType"] = "JSONPatch";
    response["patch"] = Base64Encode(decision.patch.dump());
  }
  return {{"apiVersion", review["apiVersion"]}, {"kind", review["kind"]}, {"response", response}};
}

HttpResult HandleMutate(std::string_view body, const InjectOptions& opts) {
  HttpResult r;
  r.status = 400;
  r.content_type = "text/plain; charset=utf-8";
  if (NestedTooDeep(body)) {
    r.body = "bad request: JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels\n";
    r.log = "rejected: " + r.body.substr(0, r.body.size() - 1);
    return r;
  }
  const json review = json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string problem =
      review.is_discarded() ? std::string("the body is not valid JSON") : CheckReview(review);
  if (!problem.empty()) {
    r.body = "bad request: " + problem + "\n";
    r.log = "rejected: " + problem;
    return r;
  }
  const json& request = review["request"];
  const Decision decision = Decide(request, opts);
  r.status = 200;
  r.content_type = "application/json";
  r.body = Respond(review, decision).dump();
  r.log = "uid " + request["uid"].get<std::string>() + " pod " + PodName(request) + ": " +
          decision.summary;
  return r;
}

std::string EscapePointerToken(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string Base64Encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  // EVP_EncodeBlock takes an int length; bodies are bounded far below INT_MAX.
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(data.data()),
                                static_cast<int>(data.size()));
  out.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return out;
}

}  // namespace keyfence::inject
