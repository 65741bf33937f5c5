{{/* Chart name, truncated to the 63 characters of a label value. */}}
{{- define "aac.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects. A release called atmos-auth-controller (as in the docs)
gets exactly "atmos-auth-controller".
*/}}
{{- define "aac.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "aac.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aac.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "aac.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "aac.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: atmos-auth-controller
{{- end }}

{{- define "aac.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "aac.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "aac.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Two replicas without a Lease would renew every Identity twice. */}}
{{- define "aac.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{/* Whether the controller writes ClusterAuthProfile status: by default when it watches every namespace. */}}
{{- define "aac.clusterProfileStatus" -}}
{{- $v := .Values.controller.clusterProfileStatus }}
{{- if eq (toString $v) "true" }}true{{ else if and (ne (toString $v) "false") (not .Values.controller.watchNamespaces) }}true{{ end }}
{{- end }}

{{- define "aac.metricsPortName" -}}
{{- if .Values.metrics.plain }}http-metrics{{ else }}https-metrics{{ end }}
{{- end }}

{{- define "aac.leaseNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace }}
{{- end }}

{{/*
Name of the ClusterRole that grants create on serviceaccounts/token. Fixed, not derived from
the release: the controller's "TokenRequestForbidden" condition names it, and namespace
admins bind it by this name.
*/}}
{{- define "aac.tokenCreatorRole" -}}
atmos-auth-controller-token-creator
{{- end }}

{{/*
The controller's rules on the resources it reconciles, shared by the ClusterRole (all
namespaces) and the per-namespace Roles (controller.watchNamespaces). Exactly the calls the
controller makes; see docs/install.md "What the controller may do".
*/}}
{{- define "aac.controllerRules" -}}
# Informer caches of the custom resources.
- apiGroups: ["auth.atmos.tools"]
  resources: ["authprofiles", "identities"]
  verbs: ["get", "list", "watch"]
# Conditions and renewal times are written with merge patches on the status subresource only.
- apiGroups: ["auth.atmos.tools"]
  resources: ["authprofiles/status", "identities/status"]
  verbs: ["patch"]
# Secrets: watched as metadata only, created once, then server-side applied. No delete and
# no update: expired credentials are reported, never removed, and owner references let the
# garbage collector remove a Secret with its Identity.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Events (events.k8s.io/v1; a repeated event is patched to count it).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- if .Values.rbac.ownerReferencesPermissionEnforcement }}
# OwnerReferencesPermissionEnforcement: setting blockOwnerDeletion on a Secret's owner
# reference to an Identity requires update on the Identity's finalizers.
- apiGroups: ["auth.atmos.tools"]
  resources: ["identities/finalizers"]
  verbs: ["update"]
{{- end }}
{{- end }}
