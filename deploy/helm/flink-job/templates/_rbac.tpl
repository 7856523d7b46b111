{{/*
The job's own ServiceAccount (a FlinkDeployment's spec.serviceAccount, what its JobManager runs as) and a
RoleBinding that gives it the namespace's shared job Role: one Role per namespace (rbac.roleName; the flinkops
operator chart renders it as "<operator release>-job" in every job namespace), bound once per job. Nothing here
creates or widens a Role, and the operator's own rights are untouched: Helm (the person installing the job)
creates the binding, which the API server allows only to someone holding the Role's rights or "bind" on it.
*/}}
{{- define "flink-job.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "flink-job.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flink-job.labels" . | nindent 4 }}
  {{- with .Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
{{- end -}}

{{- define "flink-job.roleBinding" -}}
{{- if .Values.rbac.bindJobRole -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ printf "%s-flink-job" (include "flink-job.name" .) }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flink-job.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ .Values.rbac.roleName }}
subjects:
  - kind: ServiceAccount
    name: {{ include "flink-job.serviceAccountName" . }}
    namespace: {{ .Release.Namespace }}
{{- end -}}
{{- end -}}
