#!/usr/bin/env bash
# Create (or reuse) the project-local Python virtualenv at infra/.venv with the
# pinned emulator/tooling deps from infra/requirements.txt.
# Idempotent: a stamp file holds the sha256 of requirements.txt; when it
# matches, the script does nothing.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
infra_dir="$(cd "${script_dir}/.." && pwd)"
venv="${infra_dir}/.venv"
req="${infra_dir}/requirements.txt"
stamp="${venv}/.stamp"

want="$(sha256sum "${req}" | cut -d' ' -f1)"

if [[ -x "${venv}/bin/python" && -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
  echo "bootstrap: infra/.venv up to date (requirements unchanged)"
  exit 0
fi

if [[ ! -x "${venv}/bin/python" ]]; then
  python3 -m venv "${venv}"
fi
rm -f "${stamp}"
"${venv}/bin/python" -m pip install --quiet --disable-pip-version-check -r "${req}"
printf '%s\n' "${want}" > "${stamp}"
echo "bootstrap: installed infra/requirements.txt into infra/.venv"
