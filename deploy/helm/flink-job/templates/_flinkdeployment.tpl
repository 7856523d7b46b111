{{/*
The job's FlinkDeployment (application mode). Call with the including chart's root context:
  {{ include "flink-job.flinkDeployment" . }}
Values are described in this chart's values.schema.json (copy it to the application chart, which is what makes
Helm check them) and README.md's "Writing a job chart" section.
*/}}
{{- define "flink-job.flinkDeployment" -}}
{{- $name := include "flink-job.name" . -}}
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "flink-job.labels" . | nindent 4 }}
  {{- with .Values.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  image: {{ printf "%s:%s" .Values.image.repository .Values.image.tag | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  flinkVersion: {{ .Values.flinkVersion }}
  serviceAccount: {{ include "flink-job.serviceAccountName" . }}
  {{- with .Values.mode }}
  mode: {{ . }}
  {{- end }}
  flinkConfiguration:
    {{- include "flink-job.flinkConfiguration" . | nindent 4 }}
  jobManager:
    replicas: {{ .Values.jobManager.replicas }}
    resource:
      cpu: {{ .Values.jobManager.cpu }}
      memory: {{ .Values.jobManager.memory | quote }}
  taskManager:
    resource:
      cpu: {{ .Values.taskManager.cpu }}
      memory: {{ .Values.taskManager.memory | quote }}
  podTemplate:
    {{- include "flink-job.podTemplate" . | nindent 4 }}
  {{- if not .Values.session.enabled }}
  job:
    {{- include "flink-job.jobSpec" .Values.job | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* A job's spec.job (of the FlinkDeployment, or of a FlinkSessionJob): call with the job's values. */}}
{{- define "flink-job.jobSpec" -}}
jarURI: {{ .jarURI | quote }}
{{- with .entryClass }}
entryClass: {{ . | quote }}
{{- end }}
{{- with .args }}
args:
  {{- range . }}
  - {{ . | quote }}
  {{- end }}
{{- end }}
parallelism: {{ .parallelism }}
upgradeMode: {{ .upgradeMode }}
state: {{ .state }}
{{- with .initialSavepointPath }}
initialSavepointPath: {{ . | quote }}
{{- end }}
{{- end -}}

{{/*
With session.enabled the FlinkDeployment is a session cluster (no spec.job) and each of session.jobs is a
FlinkSessionJob on it, named "<job name>-<its name>", as separate YAML documents.
*/}}
{{- define "flink-job.sessionJobs" -}}
{{- if .Values.session.enabled -}}
{{- $root := . -}}
{{- range $job := .Values.session.jobs }}
---
apiVersion: flink.apache.org/v1beta1
kind: FlinkSessionJob
metadata:
  name: {{ printf "%s-%s" (include "flink-job.name" $root) $job.name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "flink-job.labels" $root | nindent 4 }}
spec:
  deploymentName: {{ include "flink-job.name" $root }}
  job:
    {{- include "flink-job.jobSpec" $job | nindent 4 }}
{{- end }}
{{- end -}}
{{- end -}}

{{/*
flinkConfiguration as a map of strings: slots, state directories, HA, the Prometheus reporter on
metrics.port, then .Values.flinkConfiguration (which wins, key by key).
*/}}
{{- define "flink-job.flinkConfiguration" -}}
{{- $conf := dict "taskmanager.numberOfTaskSlots" (toString .Values.taskManager.slots) -}}
{{- with .Values.state.checkpointsDir -}}
{{- $_ := set $conf "execution.checkpointing.dir" . -}}
{{- $_ := set $conf "execution.checkpointing.externalized-checkpoint-retention" "RETAIN_ON_CANCELLATION" -}}
{{- end -}}
{{- with .Values.state.savepointsDir }}{{ $_ := set $conf "execution.checkpointing.savepoint-dir" . }}{{ end -}}
{{- with .Values.state.checkpointInterval }}{{ $_ := set $conf "execution.checkpointing.interval" . }}{{ end -}}
{{- with .Values.state.checkpointMinPause }}{{ $_ := set $conf "execution.checkpointing.min-pause" . }}{{ end -}}
{{- if .Values.highAvailability.enabled -}}
{{- $_ := set $conf "high-availability.type" "kubernetes" -}}
{{- $_ := set $conf "high-availability.storageDir" .Values.highAvailability.storageDir -}}
{{- end -}}
{{- if .Values.metrics.prometheus.enabled -}}
{{- $_ := set $conf "metrics.reporter.prom.factory.class" "org.apache.flink.metrics.prometheus.PrometheusReporterFactory" -}}
{{- $_ := set $conf "metrics.reporter.prom.port" (toString .Values.metrics.port) -}}
{{- end -}}
{{- range $key, $value := .Values.flinkConfiguration }}{{ $_ := set $conf $key (toString $value) }}{{ end -}}
{{- toYaml $conf -}}
{{- end -}}

{{/*
The pod template both JobManager and TaskManager pods start from: the job's labels, the Datadog OpenMetrics and
config-reloader annotations, the Karpenter node pool (node selector and toleration) and the Fluent Bit sidecar.
*/}}
{{- define "flink-job.podTemplate" -}}
{{- $name := include "flink-job.name" . -}}
metadata:
  labels:
    {{- include "flink-job.labels" . | nindent 4 }}
  {{- $annotations := dict -}}
  {{- if .Values.configReloader.enabled -}}
  {{- $_ := set $annotations "configmap.reloader.stakater.com/reload" (include "flink-job.reloadConfigMap" .) -}}
  {{- end -}}
  {{- if .Values.metrics.datadog.enabled -}}
  {{- $tags := dict "env" .Values.tags.env "region" .Values.tags.region "app" $name "owner" .Values.tags.owner "repo" .Values.tags.repo "job_name" $name -}}
  {{- $instance := dict "openmetrics_endpoint" (printf "http://%%%%host%%%%:%d/metrics" (int .Values.metrics.port)) "metrics" .Values.metrics.datadog.include -}}
  {{- $_ := set $annotations "ad.datadoghq.com/tags" (toJson $tags) -}}
  {{- $_ := set $annotations "ad.datadoghq.com/flink-main-container.check_names" (toJson (list "openmetrics")) -}}
  {{- $_ := set $annotations "ad.datadoghq.com/flink-main-container.init_configs" (toJson (list dict)) -}}
  {{- $_ := set $annotations "ad.datadoghq.com/flink-main-container.instances" (toJson (list $instance)) -}}
  {{- $_ := set $annotations "ad.datadoghq.com/tolerate-unready" "true" -}}
  {{- end -}}
  {{- range $key, $value := .Values.podAnnotations }}{{ $_ := set $annotations $key $value }}{{ end -}}
  {{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with .Values.nodePool.name }}
  nodeSelector:
    karpenter.sh/nodepool: {{ . | quote }}
  {{- end }}
  {{- $tolerations := list -}}
  {{- if and .Values.nodePool.name .Values.nodePool.taintKey -}}
  {{- $tolerations = append $tolerations (dict "key" .Values.nodePool.taintKey "operator" "Equal" "value" .Values.nodePool.name "effect" "NoSchedule") -}}
  {{- end -}}
  {{- $tolerations = concat $tolerations .Values.nodePool.extraTolerations -}}
  {{- with $tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: flink-main-container
      {{- with .Values.env }}
      env:
        {{- range $name := keys . | sortAlpha }}
        - name: {{ $name }}
          value: {{ get $.Values.env $name | quote }}
        {{- end }}
      {{- end }}
      {{- if .Values.fluentBit.enabled }}
      volumeMounts:
        - name: flink-logs
          mountPath: /opt/flink/log
    # Tails Flink's log files (the image's entrypoint is fluent-bit itself, so args is its command line).
    - name: fluent-bit
      image: {{ .Values.fluentBit.image | quote }}
      args:
        - --input=tail
        - --prop=path=/opt/flink/log/*.log
        - --prop=refresh_interval=10
        - --output={{ .Values.fluentBit.output.name }}
        - --match=*
        {{- range $key := keys .Values.fluentBit.output.properties | sortAlpha }}
        - --prop={{ $key }}={{ get $.Values.fluentBit.output.properties $key }}
        {{- end }}
      {{- with .Values.fluentBit.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - name: flink-logs
          mountPath: /opt/flink/log
          readOnly: true
  volumes:
    - name: flink-logs
      emptyDir: {}
      {{- end }}
{{- end -}}
