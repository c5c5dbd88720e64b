#!/usr/bin/env bash
# Entry point used by the README: sets everything up, then runs one job.
#   packaging/mmv.sh app [args]    launch the desktop app (offscreen when there is no display)
#   packaging/mmv.sh test [args]   run the whole test suite
#   packaging/mmv.sh cli [args]    run the command-line tool
#   packaging/mmv.sh bench         run the benchmarks on ../shared/media
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/packaging/setup.sh"
venv="${MMVSEARCH_VENV:-$root/.venv}"
export PATH="$venv/bin:$PATH" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
cd "$root"
job="${1:-app}"; shift || true
case "$job" in
  app)
    if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"; fi
    exec mmvsearch-app "$@" ;;
  test) ruff check engine app tests bench && exec python -m pytest "$@" ;;
  cli) exec mmvsearch "$@" ;;
  bench) exec python bench/run_all.py "$@" ;;
  *) echo "usage: $0 app|test|cli|bench [args]" >&2; exit 2 ;;
esac
