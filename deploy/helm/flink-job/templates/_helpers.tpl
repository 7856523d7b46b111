{{/*
Names and labels shared by the library's templates. Every template takes the including chart's root context
(`.`), so .Values are the application chart's values, checked by its values.schema.json.
*/}}

{{/* The job's name: the FlinkDeployment, its ServiceAccount and RoleBinding are named after it. */}}
{{- define "flink-job.name" -}}
{{- default .Release.Name .Values.jobName | trunc 45 | trimSuffix "-" -}}
{{- end -}}

{{- define "flink-job.serviceAccountName" -}}
{{- default (include "flink-job.name" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The seed platform's tags (env, region, owner, repo, job name) plus Helm's own labels, on every object. */}}
{{- define "flink-job.labels" -}}
app.kubernetes.io/name: {{ include "flink-job.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: flink-jobs
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
env: {{ .Values.tags.env | quote }}
region: {{ .Values.tags.region | quote }}
owner: {{ .Values.tags.owner | quote }}
repo: {{ .Values.tags.repo | quote }}
job-name: {{ include "flink-job.name" . }}
{{- with .Values.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The ConfigMap the config reloader watches; empty configReloader.configMap means "flink-config-<job>". */}}
{{- define "flink-job.reloadConfigMap" -}}
{{- default (printf "flink-config-%s" (include "flink-job.name" .)) .Values.configReloader.configMap -}}
{{- end -}}
