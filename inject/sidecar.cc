#include "inject/sidecar.h"

#include <cctype>
#include <cmath>
#include <tuple>
#include <utility>

namespace keyfence::inject {

using nlohmann::json;

namespace {

// The annotation's value when it is a string, else nothing.
std::optional<std::string> Annotation(const json& annotations, std::string_view key) {
  if (!annotations.is_object()) return std::nullopt;
  auto it = annotations.find(key);
  if (it == annotations.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLowerAlnum(char c) { return IsDigit(c) || (c >= 'a' && c <= 'z'); }

// Digits with at most one '.', at least one digit: the <number> of a quantity. Advances
// `pos`; returns false when there is no number at `pos`.
bool ScanNumber(std::string_view s, size_t& pos) {
  size_t digits = 0;
  bool dot = false;
  while (pos < s.size()) {
    if (IsDigit(s[pos])) {
      ++digits;
    } else if (s[pos] == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
    ++pos;
  }
  return digits > 0;
}

// The multiplier of a quantity suffix, or nothing for an unknown suffix.
std::optional<long double> SuffixScale(std::string_view suffix) {
  static constexpr std::pair<std::string_view, int> kBinary[] = {
      {"Ki", 10}, {"Mi", 20}, {"Gi", 30}, {"Ti", 40}, {"Pi", 50}, {"Ei", 60}};
  static constexpr std::pair<std::string_view, int> kDecimal[] = {
      {"", 0}, {"m", -3}, {"k", 3}, {"M", 6}, {"G", 9}, {"T", 12}, {"P", 15}, {"E", 18}};
  for (const auto& [name, bits] : kBinary) {
    if (suffix == name) return std::ldexp(1.0L, bits);
  }
  for (const auto& [name, exp10] : kDecimal) {
    if (suffix == name) return std::pow(10.0L, exp10);
  }
  return std::nullopt;
}

// Quantity annotation `key` (default `fallback`) into `out`; "" or the error message.
std::string ReadQuantity(const json& annotations, std::string_view key, std::string_view fallback,
                         std::string& out) {
  out = Annotation(annotations, key).value_or(std::string(fallback));
  if (!ParseQuantity(out)) {
    return std::string(key) + ": '" + out +
           "' is not a Kubernetes resource quantity (e.g. 50m, 32Mi, 1)";
  }
  return "";
}

json HttpProbe(std::string_view path, int period, int timeout, int failures) {
  json probe = {{"httpGet", {{"path", path}, {"port", kAdminPortName}}},
                {"periodSeconds", period},
                {"failureThreshold", failures}};
  if (timeout > 0) probe["timeoutSeconds"] = timeout;
  return probe;
}

}  // namespace

bool IsValidTenant(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.substr(0, 2) == "__") return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

bool IsDns1123Subdomain(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t label_start = 0;
  for (size_t i = 0; i <= name.size(); ++i) {
    if (i < name.size() && name[i] != '.') {
      if (!IsLowerAlnum(name[i]) && name[i] != '-') return false;
      continue;
    }
    const std::string_view label = name.substr(label_start, i - label_start);
    if (label.empty() || !IsLowerAlnum(label.front()) || !IsLowerAlnum(label.back())) {
      return false;
    }
    label_start = i + 1;
  }
  return true;
}

std::optional<long double> ParseQuantity(std::string_view s) {
  if (s.empty() || s.size() > 64) return std::nullopt;
  size_t pos = s[0] == '+' ? 1 : 0;  // resources cannot be negative: no '-'
  const size_t number_start = pos;
  if (!ScanNumber(s, pos)) return std::nullopt;
  const long double number = std::stold(std::string(s.substr(number_start, pos - number_start)));
  std::string_view suffix = s.substr(pos);
  const bool exponent = suffix.size() > 1 && (suffix[0] == 'e' || suffix[0] == 'E') &&
                        (IsDigit(suffix[1]) || suffix[1] == '+' || suffix[1] == '-');
  if (exponent) {  // "1e3"; "E" alone is exa and "Ei" exbi
    size_t epos = 1;
    if (suffix[epos] == '+' || suffix[epos] == '-') ++epos;
    const size_t exp_start = epos;
    while (epos < suffix.size() && IsDigit(suffix[epos])) ++epos;
    if (epos == exp_start || epos != suffix.size() || epos - exp_start > 4) return std::nullopt;
    return number * std::pow(10.0L, std::stoi(std::string(suffix.substr(1))));
  }
  const std::optional<long double> scale = SuffixScale(suffix);
  if (!scale) return std::nullopt;
  return number * *scale;
}

SpecResult ReadSpec(const json& annotations) {
  SpecResult r;
  SidecarSpec spec;
  const std::optional<std::string> tenant = Annotation(annotations, kAnnotationTenant);
  if (!tenant) {
    r.error = std::string(kAnnotationTenant) + ": annotation is required when " +
              std::string(kAnnotationInject) + " is \"true\" (the keyfence tenant of this pod)";
    return r;
  }
  if (!IsValidTenant(*tenant)) {
    r.error = std::string(kAnnotationTenant) + ": '" + *tenant +
              "' is not a valid tenant name (1-64 characters of [A-Za-z0-9_-], not starting "
              "with __)";
    return r;
  }
  spec.tenant = *tenant;
  const std::optional<std::string> config = Annotation(annotations, kAnnotationConfig);
  spec.config_map = config.value_or("keyfence-" + spec.tenant);
  if (!IsDns1123Subdomain(spec.config_map)) {
    r.error = std::string(kAnnotationConfig) + ": '" + spec.config_map +
              "' is not a valid ConfigMap name (lowercase DNS-1123 subdomain)" +
              (config ? "" : "; it is derived from keyfence.io/tenant, so set keyfence.io/config");
    return r;
  }
  const std::string listen = Annotation(annotations, kAnnotationListen).value_or("tcp");
  if (listen == "tcp" || listen == "unix") {
    spec.listen = listen == "tcp" ? Listen::kTcp : Listen::kUnix;
  } else {
    r.error = std::string(kAnnotationListen) + ": '" + listen + "' is not tcp or unix";
    return r;
  }
  for (const auto& [key, fallback, out] :
       {std::tuple{kAnnotationCpu, kDefaultCpu, &spec.cpu},
        std::tuple{kAnnotationMemory, kDefaultMemory, &spec.memory},
        std::tuple{kAnnotationMemoryLimit, kDefaultMemoryLimit, &spec.memory_limit}}) {
    r.error = ReadQuantity(annotations, key, fallback, *out);
    if (!r.error.empty()) return r;
  }
  if (*ParseQuantity(spec.memory) > *ParseQuantity(spec.memory_limit)) {
    r.error = std::string(kAnnotationMemory) + ": request " + spec.memory +
              " is above the memory limit " + spec.memory_limit + " (set " +
              std::string(kAnnotationMemoryLimit) + ")";
    return r;
  }
  r.spec = std::move(spec);
  return r;
}

json SocketMount() { return {{"name", kSocketVolume}, {"mountPath", kSocketDir}}; }

std::string_view RedisUrl(Listen listen) {
  return listen == Listen::kTcp ? kTcpRedisUrl : kUnixRedisUrl;
}

json SidecarContainer(const SidecarSpec& spec, const InjectOptions& options) {
  json mounts = json::array();
  // The whole ConfigMap as a directory, never subPath: kubelet never updates a subPath
  // mount, and keyfence reloads when the directory's ..data link is swapped.
  mounts.push_back({{"name", kConfigVolume}, {"mountPath", kConfigDir}, {"readOnly", true}});
  if (spec.listen == Listen::kUnix) mounts.push_back(SocketMount());
  return {
      {"name", kContainerName},
      {"image", options.image},
      {"restartPolicy", "Always"},  // native sidecar (Kubernetes >= 1.29)
      {"args", json::array({"--config", kConfigFile, "--log-format", "json"})},
      {"ports", json::array({{{"name", kAdminPortName},
                              {"containerPort", options.admin_port},
                              {"protocol", "TCP"}}})},
      {"startupProbe", HttpProbe("/healthz", 1, 0, 30)},
      {"readinessProbe", HttpProbe("/readyz", 5, 2, 2)},
      {"livenessProbe", HttpProbe("/healthz", 10, 2, 3)},
      {"resources",
       {{"requests", {{"cpu", spec.cpu}, {"memory", spec.memory}}},
        {"limits", {{"memory", spec.memory_limit}}}}},
      {"securityContext",
       {{"runAsNonRoot", true},
        {"runAsUser", 10001},
        {"runAsGroup", 10001},
        {"allowPrivilegeEscalation", false},
        {"readOnlyRootFilesystem", true},
        {"capabilities", {{"drop", json::array({"ALL"})}}}}},
      {"volumeMounts", std::move(mounts)},
  };
}

std::vector<json> SidecarVolumes(const SidecarSpec& spec) {
  std::vector<json> volumes;
  volumes.push_back({{"name", kConfigVolume}, {"configMap", {{"name", spec.config_map}}}});
  if (spec.listen == Listen::kUnix) {
    volumes.push_back({{"name", kSocketVolume}, {"emptyDir", {{"medium", "Memory"}}}});
  }
  return volumes;
}

}  // namespace keyfence::inject
