{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; the release name alone when it already contains the chart name. */}}
{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else if contains (include "sluice.name" .) .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "sluice.name" .) | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
Prefix of cluster-scoped names (ClusterRoles, ClusterRoleBindings): the release namespace and
the full name, so two releases, or a release beside config/install.yaml (sluice-controller,
sluice-eventsource, sluice-sensor), never claim the same name.
*/}}
{{- define "sluice.clusterPrefix" -}}
{{- printf "%s-%s" .Release.Namespace (include "sluice.fullname" .) }}
{{- end }}

{{- define "sluice.controllerName" -}}
{{- printf "%s-controller" (include "sluice.fullname" .) }}
{{- end }}

{{/* Labels of every object, without app.kubernetes.io/component. */}}
{{- define "sluice.baseLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sluice
{{- end }}

{{/* Labels of the controller's objects. */}}
{{- define "sluice.labels" -}}
{{ include "sluice.baseLabels" . }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sluice.controllerName" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sluice.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The one namespace the controller watches in namespaced mode. */}}
{{- define "sluice.watchNamespace" -}}
{{- default .Release.Namespace .Values.managedNamespace }}
{{- end }}

{{- define "sluice.leaseNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace }}
{{- end }}

{{/*
What the controller calls (the same rules as config/rbac/controller-role.yaml): watch the
three kinds, write their status and finalizers, and manage their children.
*/}}
{{- define "sluice.controllerRules" -}}
- apiGroups: [argoproj.io]
  resources: [eventbus, eventsources, sensors]
  verbs: [get, list, watch, patch]
- apiGroups: [argoproj.io]
  resources: [eventbus/status, eventsources/status, sensors/status]
  verbs: [get, patch]
- apiGroups: [argoproj.io]
  resources: [eventbus/finalizers, eventsources/finalizers, sensors/finalizers]
  verbs: [update]
- apiGroups: [apps]
  resources: [deployments, statefulsets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services, configmaps, secrets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, patch, delete]
# Kubernetes Events about the objects; a repeated event is a series whose count is patched.
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/* EventSource pods: Lease election, calendar ConfigMaps, referenced Secrets. */}}
{{- define "sluice.eventsourceRules" -}}
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, create, update]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, create, update, patch]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
{{- end }}

{{/* Sensor pods: Lease election, Secrets/ConfigMaps referenced by triggers. */}}
{{- define "sluice.sensorRules" -}}
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, create, update]
- apiGroups: [""]
  resources: [secrets, configmaps]
  verbs: [get]
{{- end }}
