//! The Helm chart, the container image recipe and the consumer examples, checked with the
//! real `helm` and `kubectl` against a real kube-apiserver (the local control plane of
//! `atmos-auth-testenv`).
//!
//! Several control planes, so that the ways of installing never fight over the same
//! cluster-scoped objects (the CRDs and the token-creator ClusterRole carry Helm's ownership
//! annotations after `helm install`, and Helm refuses to adopt objects another tool made):
//! - the shared one gets the chart installed exactly as docs/install.md says (release
//!   `atmos-auth-controller` in `atmos-auth-system`) and carries the RBAC matrix, the
//!   admission policy and the examples;
//! - private ones receive `helm template` output through `kubectl apply --server-side`, run
//!   with the OwnerReferencesPermissionEnforcement admission plugin, or start with CRDs that
//!   `kubectl` applied before Helm.
//!
//! Not here: running the controller binary with the chart's ServiceAccount token against the
//! local STS (the end-to-end suite owns those fixtures), and building the image (tests/image
//! builds it with scripts/build-image.sh; here the Dockerfile is held to the same paths,
//! user, entry point and labels).

mod admission;
mod cluster_admission;
mod controller_secrets;
mod dockerfile;
mod examples;
mod fixture;
#[allow(dead_code)]
#[path = "../image/spec.rs"]
mod image_spec;
mod install;
mod platform_examples;
mod rbac;
mod readme;
mod template;
