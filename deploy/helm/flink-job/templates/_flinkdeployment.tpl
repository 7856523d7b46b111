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
  job:
    jarURI: {{ .Values.job.jarURI | quote }}
    {{- with .Values.job.entryClass }}
    entryClass: {{ . | quote }}
    {{- end }}
    {{- with .Values.job.args }}
    args:
      {{- range . }}
      - {{ . | quote }}
      {{- end }}
    {{- end }}
    parallelism: {{ .Values.job.parallelism }}
    upgradeMode: {{ .Values.job.upgradeMode }}
    state: {{ .Values.job.state }}
    {{- with .Values.job.initialSavepointPath }}
    initialSavepointPath: {{ . | quote }}
    {{- end }}
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
