{{/* Names ------------------------------------------------------------------------------ */}}

{{- define "keyfence.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-keyfence, or the release name alone when it already contains the chart name. */}}
{{- define "keyfence.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "keyfence.gateway.fullname" -}}
{{- printf "%s-gateway" (include "keyfence.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "keyfence.injector.fullname" -}}
{{- printf "%s-injector" (include "keyfence.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "keyfence.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "keyfence.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "keyfence.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels: include "keyfence.labels" (dict "ctx" $ "component" "gateway") */}}
{{- define "keyfence.labels" -}}
helm.sh/chart: {{ include "keyfence.chart" .ctx }}
{{ include "keyfence.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Values.image.tag | default .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: keyfence
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels: name, instance and (when given) component. Never change them: a
     Deployment's selector is immutable. */}}
{{- define "keyfence.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keyfence.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{/* Images ----------------------------------------------------------------------------- */}}

{{- define "keyfence.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}

{{- define "keyfence.sidecarImage" -}}
{{- $repo := .Values.sidecar.image.repository | default .Values.image.repository -}}
{{- $tag := .Values.sidecar.image.tag | default .Values.image.tag | default .Chart.AppVersion | toString -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/* Ports --------------------------------------------------------------------------------
     keyfence.portOf: the port of a "host:port" / "[v6]:port" bind, as an integer. */}}
{{- define "keyfence.portOf" -}}
{{- $parts := splitList ":" (toString .) -}}
{{- $port := last $parts -}}
{{- if or (lt (len $parts) 2) (not (regexMatch "^[0-9]+$" $port)) -}}
{{- fail (printf "keyfence: %q is not a host:port bind" (toString .)) -}}
{{- end -}}
{{- $port | int -}}
{{- end -}}

{{/* The gateway's admin port, from config.admin.bind (which must be reachable by probes). */}}
{{- define "keyfence.adminPort" -}}
{{- $bind := ((.Values.config.admin | default dict).bind | default "") | toString -}}
{{- if not $bind -}}
{{- fail "keyfence: config.admin.bind is required (e.g. 0.0.0.0:9121): the probes and /metrics use it" -}}
{{- end -}}
{{- if not (or (hasPrefix "0.0.0.0:" $bind) (hasPrefix "[::]:" $bind)) -}}
{{- fail (printf "keyfence: config.admin.bind %q must listen on every address (0.0.0.0:PORT or [::]:PORT): kubelet probes and Prometheus reach the pod IP" $bind) -}}
{{- end -}}
{{- include "keyfence.portOf" $bind -}}
{{- end -}}

{{/* The gateway's TCP listeners as a list of {name, port}: "redis" for the first,
     "redis-1", "redis-2", ... for the others. Returned as YAML (fromYaml it). */}}
{{- define "keyfence.gatewayPorts" -}}
{{- $ports := list -}}
{{- range (.Values.config.listeners | default list) -}}
{{- if .bind -}}
{{- $name := ternary "redis" (printf "redis-%d" (len $ports)) (eq (len $ports) 0) -}}
{{- $ports = append $ports (dict "name" $name "port" (include "keyfence.portOf" .bind | int)) -}}
{{- end -}}
{{- end -}}
{{- if not $ports -}}
{{- fail "keyfence: config.listeners needs at least one TCP listener (bind: 0.0.0.0:6379) for the gateway" -}}
{{- end -}}
{{- toYaml (dict "ports" $ports) -}}
{{- end -}}

{{/* Configs ------------------------------------------------------------------------------ */}}

{{- define "keyfence.configHeader" -}}
# Rendered by the keyfence Helm chart ({{ include "keyfence.chart" . }}) from its values.
# Mounted as a directory on /etc/keyfence: keyfence reloads it when kubelet swaps ..data.
{{- end -}}

{{/* The gateway config volume source: a ConfigMap, a rendered Secret or an existing one. */}}
{{- define "keyfence.gatewayConfigVolume" -}}
{{- if .Values.configSecret.existingSecret -}}
secret:
  secretName: {{ .Values.configSecret.existingSecret }}
{{- else if .Values.configSecret.enabled -}}
secret:
  secretName: {{ include "keyfence.gateway.fullname" . }}
{{- else -}}
configMap:
  name: {{ include "keyfence.gateway.fullname" . }}
{{- end -}}
{{- end -}}

{{/* The keyfence config of one sidecar entry (sidecar.configs[i]): YAML text.
     include "keyfence.sidecarConfig" (dict "ctx" $ "entry" .) */}}
{{- define "keyfence.sidecarConfig" -}}
{{- $v := .ctx.Values -}}
{{- $e := .entry -}}
{{- $listener := dict "tenant" $e.tenant -}}
{{- $listen := $e.listen | default "tcp" -}}
{{- if eq $listen "tcp" -}}
{{- $_ := set $listener "bind" "127.0.0.1:6379" -}}
{{- else if eq $listen "unix" -}}
{{- $_ := set $listener "unix" "/run/keyfence/redis.sock" -}}
{{- $_ := set $listener "mode" ($v.sidecar.unixSocketMode | toString) -}}
{{- else -}}
{{- fail (printf "keyfence: sidecar.configs: tenant %q has listen %q; expected tcp or unix" $e.tenant $listen) -}}
{{- end -}}
{{- $tenant := deepCopy ((($v.config.tenants | default dict) | dig $e.tenant dict) | default dict) -}}
{{- $_ := unset $tenant "users" -}}
{{- $admin := dict "bind" (printf "0.0.0.0:%d" ($v.sidecar.adminPort | int)) -}}
{{- with ($v.config.admin | default dict).token }}{{ $_ := set $admin "token" . }}{{ end -}}
{{- $cfg := dict "cluster_name" $v.config.cluster_name "workers" ($v.sidecar.workers | int) "max_clients" ($v.sidecar.maxClients | int) "listeners" (list $listener) "admin" $admin "tenants" (dict $e.tenant $tenant) -}}
{{- range $k := list "shutdown_grace_ms" "backend" "policy" "limits" -}}
{{- if hasKey $v.config $k -}}
{{- $_ := set $cfg $k (deepCopy (get $v.config $k)) -}}
{{- end -}}
{{- end -}}
{{- $cfg = mergeOverwrite $cfg (deepCopy ($e.config | default dict)) -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* Scheduling: the default preferred anti-affinity on the node.
     include "keyfence.affinity" (dict "ctx" $ "component" "gateway" "affinity" .Values.gateway.affinity) */}}
{{- define "keyfence.affinity" -}}
{{- if .affinity -}}
{{ toYaml .affinity }}
{{- else -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "keyfence.selectorLabels" (dict "ctx" .ctx "component" .component) | nindent 12 }}
{{- end -}}
{{- end -}}

{{/* The securityContexts every keyfence container runs with. */}}
{{- define "keyfence.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "keyfence.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Injector TLS: exactly one source, checked wherever the injector renders. */}}
{{- define "keyfence.injector.tlsSecret" -}}
{{- $inj := .Values.injector -}}
{{- $cm := $inj.certManager.enabled -}}
{{- $sec := $inj.tls.existingSecret -}}
{{- if and $cm $sec -}}
{{- fail "keyfence: injector TLS: set either injector.certManager.enabled=true or injector.tls.existingSecret, not both" -}}
{{- else if $cm -}}
{{- printf "%s-tls" (include "keyfence.injector.fullname" .) -}}
{{- else if $sec -}}
{{- if not $inj.tls.caBundle -}}
{{- fail "keyfence: injector.tls.existingSecret needs injector.tls.caBundle (base64 of the PEM CA that signed the Secret's certificate), or the API server cannot verify the webhook" -}}
{{- end -}}
{{- $sec -}}
{{- else -}}
{{- fail "keyfence: injector.enabled=true needs a TLS certificate for the webhook: set injector.certManager.enabled=true (cert-manager issues it), or injector.tls.existingSecret (a kubernetes.io/tls Secret) with injector.tls.caBundle; or set injector.enabled=false" -}}
{{- end -}}
{{- end -}}
