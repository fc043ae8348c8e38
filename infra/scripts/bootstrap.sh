#!/usr/bin/env bash
# Everything the Makefile's targets need beyond a Rust toolchain, python3 and
# Node, each step idempotent and a no-op when nothing changed:
#  1. infra/.venv: the pinned emulator/tooling deps of infra/requirements.txt
#     (stamp: the sha256 of requirements.txt);
#  2. Chromium from Debian's packages, for the dashboard's browser tests
#     (Playwright drives it; `playwright install` is never used);
#  3. web/node_modules by `npm ci` (stamp: the sha256 of package-lock.json);
#  4. web/dist, built when a source of the dashboard changed (stamp: the
#     sha256 over its sources).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
infra_dir="$(cd "${script_dir}/.." && pwd)"
root="$(cd "${infra_dir}/.." && pwd)"

venv_step() {
  local venv="${infra_dir}/.venv" req="${infra_dir}/requirements.txt"
  local stamp="${venv}/.stamp" want
  want="$(sha256sum "${req}" | cut -d' ' -f1)"
  if [[ -x "${venv}/bin/python" && -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
    echo "bootstrap: infra/.venv up to date (requirements unchanged)"
    return
  fi
  if [[ ! -x "${venv}/bin/python" ]]; then
    python3 -m venv "${venv}"
  fi
  rm -f "${stamp}"
  "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check -r "${req}"
  printf '%s\n' "${want}" > "${stamp}"
  echo "bootstrap: installed infra/requirements.txt into infra/.venv"
}

chromium_step() {
  if command -v chromium >/dev/null 2>&1; then
    return
  fi
  if [[ "$(id -u)" != "0" ]]; then
    echo "bootstrap: chromium is missing and this is not root; install it with" >&2
    echo "  sudo apt-get install -y --no-install-recommends chromium chromium-driver fonts-dejavu-core" >&2
    return
  fi
  echo "bootstrap: installing Chromium from Debian's packages (the dashboard's browser tests)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver fonts-dejavu-core >/dev/null
}

web_step() {
  local web="${root}/web"
  local stamp="${web}/node_modules/.stamp" want
  want="$(sha256sum "${web}/package-lock.json" | cut -d' ' -f1)"
  if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
    echo "bootstrap: web/node_modules up to date (package-lock.json unchanged)"
  else
    (cd "${web}" && npm ci --no-audit --no-fund --loglevel=error)
    printf '%s\n' "${want}" > "${stamp}"
    echo "bootstrap: npm ci in web/"
  fi
  local built="${web}/dist/.stamp" sources
  sources="$(cd "${web}" && find src index.html package-lock.json tsconfig.json vite.config.ts -type f -print0 \
    | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
  if [[ -f "${built}" && "$(cat "${built}")" == "${sources}" ]]; then
    echo "bootstrap: web/dist up to date (dashboard sources unchanged)"
    return
  fi
  (cd "${web}" && npm run --silent build >/dev/null)
  printf '%s\n' "${sources}" > "${built}"
  echo "bootstrap: built the dashboard into web/dist"
}

venv_step
chromium_step
web_step
