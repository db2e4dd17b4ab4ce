{{- define "bpfglobals.name" -}}bpfglobals{{- end -}}
{{- define "bpfglobals.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- define "bpfglobals.labels" -}}
app.kubernetes.io/name: bpfglobals
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- define "bpfglobals.operatorSA" -}}{{ .Release.Name }}-operator{{- end -}}
{{- define "bpfglobals.agentSA" -}}{{ .Release.Name }}-agent{{- end -}}
{{- define "bpfglobals.apiServerEnv" -}}
{{- with .Values.apiServer.host }}
- {name: KUBERNETES_SERVICE_HOST, value: {{ . | quote }}}
- {name: KUBERNETES_SERVICE_PORT, value: {{ $.Values.apiServer.port | quote }}}
{{- end }}
{{- end -}}
{{- define "bpfglobals.webhookName" -}}{{ .Release.Name }}-bpfglobals{{- end -}}
{{- define "bpfglobals.webhookService" -}}{{ .Release.Name }}-webhook{{- end -}}
{{- define "bpfglobals.webhookSecret" -}}{{ .Release.Name }}-webhook-tls{{- end -}}
