#!/usr/bin/env bash
# One-shot, idempotent set-up on a fresh Debian machine: system packages, a virtual
# environment in .venv and the project installed into it (editable, with dev tools).
# Re-running is cheap: each step is skipped when its stamp matches.
#   packaging/setup.sh            system packages + .venv (dev and bench extras)
#   packaging/setup.sh --system   system packages only (packaging/build.sh uses its own venv)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${MMVSEARCH_VENV:-$root/.venv}"
py="${PYTHON:-python3}"

apt_packages=(
  espeak-ng           # synthesised speech for speech/microphone tests
  libportaudio2       # sounddevice (microphone)
  libpulse0           # QtMultimedia
  alsa-utils          # fake ALSA microphone in tests
  xvfb xauth          # screenshots on a virtual screen
  libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 libxcb-image0
  libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-xkb1
  libegl1 libgl1 libopengl0 libglib2.0-0 libfontconfig1 libdbus-1-3 fonts-dejavu-core
  binutils            # objdump/strip for packaging/build.sh (PyInstaller)
)

need_apt=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$p")
  done
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[setup] installing system packages: ${need_apt[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

[ "${1:-}" = "--system" ] && exit 0

if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating virtual environment $venv"
  "$py" -m venv "$venv"
fi
stamp="$venv/.mmvsearch-installed"
want="$(cat pyproject.toml packaging/setup.sh | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing Python packages (first run takes a few minutes)"
  "$venv/bin/python" -m pip install -q --upgrade pip
  # torch first and exactly pinned: it resolves to the local CPU wheel, never a CUDA build.
  "$venv/bin/python" -m pip install -q "torch==2.13.0"
  "$venv/bin/python" -m pip install -q -e ".[dev,bench,cluster,ocr]"
  # On-screen text: RapidOCR without its declared opencv-python (which would replace the headless cv2).
  "$venv/bin/python" -m pip install -q --no-deps "rapidocr-onnxruntime==1.4.4"
  echo "$want" > "$stamp"
fi
echo "[setup] ready: $venv"
