{{/*
Names, labels and the derived lists every template shares. Keeping them here means a Role, the Deployment's
WATCH_NAMESPACES and the job ServiceAccounts can never disagree about which namespaces are watched.
*/}}

{{- define "flinkops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "<release>-<chart>", or just the release name when it already contains the chart name. */}}
{{- define "flinkops.fullname" -}}
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

{{- define "flinkops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The pod selector: only labels that never change across upgrades (a Deployment's selector is immutable). */}}
{{- define "flinkops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flinkops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Labels on every object the chart renders. Call with (dict "root" $ "component" "...") */}}
{{- define "flinkops.labels" -}}
helm.sh/chart: {{ include "flinkops.chart" .root }}
app.kubernetes.io/name: {{ include "flinkops.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: flinkops
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "flinkops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "flinkops.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "flinkops.leaseName" -}}
{{- default (printf "%s-leader" (include "flinkops.fullname" .)) .Values.leaderElection.leaseName -}}
{{- end -}}

{{/*
The namespaces that get a namespaced operator Role, as a JSON list (templates only return strings; callers
use fromJsonArray). Empty when watchAllNamespaces is set: the ClusterRole covers everything then.
*/}}
{{- define "flinkops.watchedNamespaces" -}}
{{- if .Values.watchAllNamespaces -}}
{{- list | toJson -}}
{{- else if .Values.watchNamespaces -}}
{{- .Values.watchNamespaces | uniq | toJson -}}
{{- else -}}
{{- list .Release.Namespace | toJson -}}
{{- end -}}
{{- end -}}

{{/* Where the job ServiceAccount, its Role and RoleBinding go, as a JSON list. */}}
{{- define "flinkops.jobNamespaces" -}}
{{- if .Values.jobServiceAccount.namespaces -}}
{{- .Values.jobServiceAccount.namespaces | uniq | toJson -}}
{{- else if and .Values.watchNamespaces (not .Values.watchAllNamespaces) -}}
{{- .Values.watchNamespaces | uniq | toJson -}}
{{- else -}}
{{- list .Release.Namespace | toJson -}}
{{- end -}}
{{- end -}}

{{/*
What the operator may do in a watched namespace; the same rules go into a Role per namespace or into the
ClusterRole. No Secret access at all: the operator passes Secret references through to pod specs and never
reads their contents.
*/}}
{{- define "flinkops.operatorRules" -}}
- apiGroups: ["flink.apache.org"]
  resources: ["flinkdeployments", "flinksessionjobs"]
  verbs: ["get", "list", "watch", "update", "patch"]
- apiGroups: ["flink.apache.org"]
  resources: ["flinkdeployments/status", "flinksessionjobs/status"]
  verbs: ["get", "update", "patch"]
# Setting blockOwnerDeletion on an owner reference to a FlinkDeployment needs update on its finalizers.
- apiGroups: ["flink.apache.org"]
  resources: ["flinkdeployments/finalizers", "flinksessionjobs/finalizers"]
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["services", "configmaps"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
# The operator observes JobManager/TaskManager pods (their Deployments own them); patch lifts the start gate
# of a JobManager without HA (its first pod only: a replacement must not start the job from old state).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "patch"]
# A FlinkDeployment's spec.ingress: server-side applied, and removed when the spec drops it.
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "create", "patch", "delete"]
# Both event APIs: older clients write core/v1 Events, newer ones events.k8s.io/v1.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}

{{/*
Combinations that would deploy something broken or unsafe fail the render with the reason, instead of
installing it. Included once, from the Deployment template.
*/}}
{{- define "flinkops.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) -}}
{{- fail "replicas > 1 needs leaderElection.enabled=true: without a Lease every replica would reconcile the same resources at once" -}}
{{- end -}}
{{- if and .Values.watchAllNamespaces .Values.watchNamespaces -}}
{{- fail "set either watchNamespaces or watchAllNamespaces=true, not both" -}}
{{- end -}}
{{- if and .Values.webhook.certManager.enabled (not .Values.webhook.enabled) -}}
{{- fail "webhook.certManager.enabled needs webhook.enabled=true" -}}
{{- end -}}
{{- end -}}

{{/* The admission webhook's names: its Service, the Secret with its certificate, the (cluster-scoped, so
release- and namespace-qualified) ValidatingWebhookConfiguration, and cert-manager's Certificate. */}}
{{- define "flinkops.webhookService" -}}
{{- printf "%s-webhook" (include "flinkops.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "flinkops.webhookSecret" -}}
{{- default (printf "%s-webhook-tls" (include "flinkops.fullname" .)) .Values.webhook.secretName -}}
{{- end -}}

{{- define "flinkops.webhookConfig" -}}
{{- printf "%s-%s" (include "flinkops.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* What both webhook configurations share once their rules are set: where the API server sends a review
(the Service, and the caBundle the operator patched in, kept across upgrades: a lookup is empty in helm template;
with cert-manager its cainjector fills it), which namespaces (only the watched ones: another operator's resources
are none of this one's business) and which objects (canaries have no real spec and are never sent).
Call with (dict "root" . "kind" "ValidatingWebhookConfiguration" "path" "/validate"), indented under a webhook. */}}
{{- define "flinkops.webhookClientConfig" -}}
{{- $root := .root -}}
{{- $config := include "flinkops.webhookConfig" $root -}}
clientConfig:
  service:
    name: {{ include "flinkops.webhookService" $root }}
    namespace: {{ $root.Release.Namespace }}
    path: {{ .path }}
    port: 443
  {{- if not $root.Values.webhook.certManager.enabled }}
  {{- with lookup "admissionregistration.k8s.io/v1" .kind "" $config }}
  {{- with (index (.webhooks | default list) 0).clientConfig.caBundle }}
  caBundle: {{ . }}
  {{- end }}
  {{- end }}
  {{- end }}
{{- end -}}

{{- define "flinkops.webhookSelectors" -}}
{{- $watched := include "flinkops.watchedNamespaces" . | fromJsonArray -}}
{{- if $watched }}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: In
      values:
        {{- toYaml $watched | nindent 8 }}
{{- end }}
objectSelector:
  matchExpressions:
    - key: flink.apache.org/canary
      operator: NotIn
      values: ["true"]
{{- end -}}

{{/* The gateway's names and pod selector (its own component, so no operator Service or budget selects it). */}}
{{- define "flinkops.gatewayName" -}}
{{- printf "%s-gateway" (include "flinkops.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "flinkops.gatewaySelectorLabels" -}}
app.kubernetes.io/name: {{ include "flinkops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{/* The job namespaces that get the gateway's NetworkPolicy, as a JSON list. */}}
{{- define "flinkops.gatewayPolicyNamespaces" -}}
{{- if .Values.gateway.networkPolicy.namespaces -}}
{{- .Values.gateway.networkPolicy.namespaces | uniq | toJson -}}
{{- else -}}
{{- include "flinkops.jobNamespaces" . -}}
{{- end -}}
{{- end -}}

{{/* The gateway settings that cannot work, refused with the reason. Included once, from templates/gateway.yaml. */}}
{{- define "flinkops.validateGateway" -}}
{{- $gateway := .Values.gateway -}}
{{- if not $gateway.tlsSecret -}}
{{- fail "gateway.enabled needs gateway.tlsSecret: the name of a kubernetes.io/tls Secret in the release namespace with the gateway's certificate (tls.crt, tls.key) and, for certificateRules, the callers' CA (ca.crt)" -}}
{{- end -}}
{{- if and (not $gateway.oidc.issuer) (not $gateway.certificateRules) -}}
{{- fail "gateway.enabled needs gateway.oidc.issuer (with clientId) or gateway.certificateRules: otherwise nobody could sign in" -}}
{{- end -}}
{{- if and $gateway.oidc.issuer (not $gateway.oidc.clientId) -}}
{{- fail "gateway.oidc.issuer needs gateway.oidc.clientId (the client registered at the provider)" -}}
{{- end -}}
{{- range $i, $rule := $gateway.certificateRules -}}
{{- if eq (len (compact (list ($rule.regex | default "") ($rule.exact | default "")))) 1 | not -}}
{{- fail (printf "gateway.certificateRules[%d] (%s) needs exactly one of regex and exact" $i $rule.name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
