#!/usr/bin/env bash
# Installs everything tpa needs on a fresh machine: system libraries and the CJK font for the PDF
# reports (Debian packages), then the project with its test extras. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
fc-list 2>/dev/null | grep "Noto Sans CJK" >/dev/null || need_apt+=(fonts-noto-cjk)   # no -q: with pipefail, an early exit of grep fails the pipe
command -v pdftoppm >/dev/null 2>&1 || need_apt+=(poppler-utils)
ldconfig -p 2>/dev/null | grep libpango-1.0 >/dev/null || need_apt+=(libpango-1.0-0 libpangoft2-1.0-0)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "setup: installing system packages: ${need_apt[*]}" >&2
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 | grep -v -e "Running pip as the 'root' user" -e "is ignored: it is neither" >&2 || true
python3 -c "import sampling, survey, reports, tpa" || { echo "setup: the project did not install" >&2; exit 1; }
echo "setup: done" >&2
