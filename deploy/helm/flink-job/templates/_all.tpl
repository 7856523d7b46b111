{{/*
Everything one job release installs, as separate YAML documents: its ServiceAccount, the RoleBinding to the
namespace's job Role, the FlinkDeployment and (session.enabled) its FlinkSessionJobs. An application chart's whole template can be
  {{ include "flink-job.all" . }}
or it can include the parts ("flink-job.serviceAccount", "flink-job.roleBinding", "flink-job.flinkDeployment",
"flink-job.sessionJobs")
next to objects of its own.
*/}}
{{- define "flink-job.all" -}}
{{- $serviceAccount := include "flink-job.serviceAccount" . -}}
{{- $roleBinding := include "flink-job.roleBinding" . -}}
{{- with $serviceAccount }}
---
{{ . }}
{{- end }}
{{- with $roleBinding }}
---
{{ . }}
{{- end }}
---
{{ include "flink-job.flinkDeployment" . }}
{{- include "flink-job.sessionJobs" . }}
{{- end -}}
