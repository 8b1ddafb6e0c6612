// The sidecar that `keyfence inject` adds to a pod: what the pod's annotations ask for
// (SidecarSpec, read and checked by ReadSpec) and the Kubernetes objects that carry it
// (the native-sidecar container, its volumes, the app's REDIS_URL). Pure: JSON in, JSON
// out, no I/O. The names below are a contract shared with the Helm chart and operators
// (deploy/inject/README.md); extend them, never rename them.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keyfence::inject {

// Pod annotations read (and one written) by the webhook.
inline constexpr std::string_view kAnnotationInject = "keyfence.io/inject";
inline constexpr std::string_view kAnnotationTenant = "keyfence.io/tenant";
inline constexpr std::string_view kAnnotationConfig = "keyfence.io/config";
inline constexpr std::string_view kAnnotationListen = "keyfence.io/listen";
inline constexpr std::string_view kAnnotationCpu = "keyfence.io/cpu";
inline constexpr std::string_view kAnnotationMemory = "keyfence.io/memory";
inline constexpr std::string_view kAnnotationMemoryLimit = "keyfence.io/memory-limit";
inline constexpr std::string_view kAnnotationInjected = "keyfence.io/injected";

// Names of what is injected.
inline constexpr std::string_view kContainerName = "keyfence";
inline constexpr std::string_view kConfigVolume = "keyfence-config";
inline constexpr std::string_view kSocketVolume = "keyfence-socket";
inline constexpr std::string_view kAdminPortName = "keyfence-admin";
inline constexpr std::string_view kConfigDir = "/etc/keyfence";
inline constexpr std::string_view kConfigFile = "/etc/keyfence/keyfence.yaml";
inline constexpr std::string_view kSocketDir = "/run/keyfence";
inline constexpr std::string_view kRedisUrlEnv = "REDIS_URL";
inline constexpr std::string_view kTcpRedisUrl = "redis://127.0.0.1:6379";
inline constexpr std::string_view kUnixRedisUrl = "unix:///run/keyfence/redis.sock";

// Defaults for the sidecar's resources when the pod does not annotate them.
inline constexpr std::string_view kDefaultCpu = "50m";
inline constexpr std::string_view kDefaultMemory = "32Mi";
inline constexpr std::string_view kDefaultMemoryLimit = "128Mi";
inline constexpr uint16_t kDefaultAdminPort = 9121;
// The port of the sidecar's tcp listener (the app's redis://127.0.0.1:6379).
inline constexpr int kRedisPort = 6379;

// Settings of the webhook process (its command line), the same for every pod.
struct InjectOptions {
  std::string image;                        // the sidecar's image
  uint16_t admin_port = kDefaultAdminPort;  // containerPort of the sidecar's admin HTTP
};

enum class Listen { kTcp, kUnix };

// What one pod's annotations ask for, checked.
struct SidecarSpec {
  std::string tenant;      // keyfence.io/tenant
  std::string config_map;  // keyfence.io/config, default "keyfence-<tenant>"
  Listen listen = Listen::kTcp;
  std::string cpu{kDefaultCpu};
  std::string memory{kDefaultMemory};
  std::string memory_limit{kDefaultMemoryLimit};
};

// Either a spec or the reason the pod must be denied (a message naming the annotation).
struct SpecResult {
  std::optional<SidecarSpec> spec;
  std::string error;
};

// Reads the keyfence.io/* annotations of a pod that asked for injection. `annotations`
// is the pod's metadata.annotations object (values that are not strings count as absent).
SpecResult ReadSpec(const nlohmann::json& annotations);

// The native sidecar: an init container with restartPolicy Always.
nlohmann::json SidecarContainer(const SidecarSpec& spec, const InjectOptions& options);
// The pod volumes the sidecar needs: the ConfigMap, and for unix the socket directory.
std::vector<nlohmann::json> SidecarVolumes(const SidecarSpec& spec);
// The volumeMount app containers get for listen unix (the socket directory).
nlohmann::json SocketMount();
std::string_view RedisUrl(Listen listen);

// [A-Za-z0-9_-]{1,64}, not starting with "__" (reserved for keyfence's own data).
bool IsValidTenant(std::string_view name);
// A DNS-1123 subdomain (what Kubernetes accepts as a ConfigMap name).
bool IsDns1123Subdomain(std::string_view name);
// The value of a Kubernetes resource quantity ("50m", "32Mi", "1e3", "0.5"), or nothing
// when the text is not one.
std::optional<long double> ParseQuantity(std::string_view text);

}  // namespace keyfence::inject
