#!/usr/bin/env bash
# Interoperability suite: MSAL, azure-identity and Authlib against a real agentauth server.
# Usage: tests/interop/run.sh [extra pytest args]
# Creates .venv (Python 3.11) if missing, installs the pinned requirements, builds the binary if
# missing (cargo build), and runs pytest. AGENTAUTH_BIN overrides the binary; PYTHON the
# interpreter used to create the venv.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

venv="$repo/.venv"
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"

bin="${AGENTAUTH_BIN:-$repo/target/debug/agentauth}"
if [ ! -x "$bin" ]; then
    cargo build
fi
export AGENTAUTH_BIN="$bin"

# requests lets these override every explicit verify=; the tests pass the local CA explicitly.
unset REQUESTS_CA_BUNDLE CURL_CA_BUNDLE

exec "$venv/bin/python" -m pytest -q "$here" "$@"
