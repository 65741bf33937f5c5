#!/usr/bin/env bash
# The test command (README "Run the tests"): builds the local control plane from Go modules
# once per machine (cached), makes sure the AWS CLI, azure-identity and google-auth are present for the
# consumer tests, then
# runs every test of the workspace. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

for tool in cargo go python3; do
  command -v "$tool" >/dev/null || { echo "tests/run.sh: $tool is required (see README, Prerequisites)" >&2; exit 1; }
done
# The consumer tests run the real AWS CLI against the files the controller writes.
if ! command -v aws >/dev/null; then
  echo "tests/run.sh: installing the AWS CLI from PyPI" >&2
  python3 -m pip install --quiet --disable-pip-version-check awscli
fi
# The Azure consumer test runs azure-identity for Python against the local Entra endpoint.
if ! python3 -c 'import azure.identity' 2>/dev/null; then
  echo "tests/run.sh: installing azure-identity from PyPI" >&2
  python3 -m pip install --quiet --disable-pip-version-check azure-identity
fi
# The GCP consumer test runs google-auth for Python against the local Google STS and IAM Credentials.
if ! python3 -c 'import google.auth, requests' 2>/dev/null; then
  echo "tests/run.sh: installing google-auth from PyPI" >&2
  python3 -m pip install --quiet --disable-pip-version-check google-auth requests
fi

# The alert tests run the chart's rules through the real promtool (Debian's `prometheus`).
if ! command -v promtool >/dev/null; then
  echo "tests/run.sh: installing promtool (Debian package prometheus)" >&2
  install_promtool() { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null; }
  install_promtool || { apt-get update >/dev/null && install_promtool; }
fi

start=$SECONDS
# The control plane and helm (the chart tests' part; `cargo dev` builds only the former).
tests/controlplane/build-binaries.sh all >/dev/null
echo "tests/run.sh: control plane binaries ready in $((SECONDS - start)) s" >&2

# Eight tests at a time in each test binary: the end-to-end tests mostly wait on timers and
# the API server (each in its own namespace); the heavy ones (fleets, kills, leader election
# on the shared API server; restarts of a control plane of their own) queue on a lock per
# kind (tests/e2e/serial.rs), each waiting one holding a slot: eight leave room beside them.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-8}"
cargo test --workspace --locked "$@"
