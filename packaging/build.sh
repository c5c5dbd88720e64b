#!/usr/bin/env bash
# Build the Linux installers from a fresh Debian machine (one command each):
#   packaging/build.sh deb      dist/mmvsearch_<version>_amd64.deb
#   packaging/build.sh tar      dist/mmvsearch-<version>-linux-x86_64.tar.gz
#   packaging/build.sh all      both (the frozen app is built once)
#   packaging/build.sh bundle   only the frozen app folder, build/bundle/mmvsearch
# Steps: system packages (packaging/setup.sh --system), a build venv of its own in build/venv
# (CPU torch, hnswlib compiled without -march=native, PyInstaller), the PyInstaller onedir bundle
# (packaging/mmvsearch.spec, trimmed by packaging/trim.py), then the installer. Each step is
# skipped when nothing it depends on changed. MMVSEARCH_NO_TRIM=1 builds the untrimmed bundle
# (to measure what trimming saves).
# Torch: plain `pip install torch==2.13.0` must resolve to a CPU wheel (it does here; elsewhere set
# MMVSEARCH_TORCH_INDEX to PyTorch's CPU wheel index). NVIDIA users: MMVSEARCH_VARIANT=cuda with
# MMVSEARCH_TORCH_INDEX set to a CUDA wheel index builds mmvsearch-cuda_<version>_amd64.deb and
# mmvsearch-cuda-<version>-linux-x86_64.tar.gz (several GB; docs/installers.md).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
what="${1:-all}"
case "$what" in deb|tar|all|bundle) ;; *) echo "usage: $0 deb|tar|all|bundle" >&2; exit 2 ;; esac

variant="${MMVSEARCH_VARIANT:-cpu}"
case "$variant" in cpu) name=mmvsearch ;; cuda) name=mmvsearch-cuda ;; *) echo "MMVSEARCH_VARIANT: cpu|cuda" >&2; exit 2 ;; esac
torch_index=()
[ -n "${MMVSEARCH_TORCH_INDEX:-}" ] && torch_index=(--index-url "$MMVSEARCH_TORCH_INDEX")
suffix=""; [ "$variant" = cpu ] || suffix="-$variant"
venv="${MMVSEARCH_BUILD_VENV:-$root/build/venv$suffix}"
py="${PYTHON:-python3}"
version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' engine/__init__.py)"
[ -n "$version" ] || { echo "[build] no __version__ in engine/__init__.py" >&2; exit 1; }
bundle="$root/build/bundle$suffix/mmvsearch"
mkdir -p build dist
log() { echo "[build $(date +%H:%M:%S)] $*"; }

bash packaging/setup.sh --system

make_venv() {
  local stamp="$venv/.mmvsearch-build" want
  want="$( (cat pyproject.toml; echo "$variant ${MMVSEARCH_TORCH_INDEX:-}") | sha256sum | cut -c1-16)"
  [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0
  log "build venv $venv (first run takes several minutes)"
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
  local vpy="$venv/bin/python"
  "$vpy" -m pip install -q --upgrade pip
  # torch first and exactly pinned: the CPU wheel. The CUDA build is a separate variant (docs/installers.md).
  "$vpy" -m pip install -q "${torch_index[@]}" "torch==2.13.0"
  # hnswlib from source without -march=native, so the bundle runs on CPUs older than this one;
  # --no-cache-dir keeps pip from reusing a natively compiled wheel from its cache.
  HNSWLIB_NO_NATIVE=1 "$vpy" -m pip install -q --no-cache-dir --force-reinstall --no-deps \
    --no-binary hnswlib "hnswlib>=0.8"
  # The runtime dependencies and PyInstaller, not the project itself: the spec freezes the source tree.
  "$vpy" -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(p["dependencies"] + p["optional-dependencies"]["installer"]))' > build/requirements.txt
  "$vpy" -m pip install -q -r build/requirements.txt
  if [ "$variant" = cpu ]; then
    "$vpy" -c 'import hnswlib, torch; assert torch.version.cuda is None, "a CUDA torch got in: set MMVSEARCH_TORCH_INDEX"'
  fi
  echo "$want" > "$stamp"
}

make_bundle() {
  local stamp="$(dirname "$bundle")/.stamp" want
  want="$( (git ls-files -s engine app resources packaging; echo "trim=${MMVSEARCH_NO_TRIM:-}") | sha256sum | cut -c1-16)"
  if [ -x "$bundle/mmvsearch" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && git diff --quiet HEAD -- engine app resources packaging; then
    log "bundle up to date: $bundle"; return 0
  fi
  log "freezing the app with PyInstaller"
  local t0=$SECONDS
  rm -rf "$(dirname "$bundle")"   # the work folder stays: PyInstaller reuses what did not change
  # Freeze a snapshot of the sources: an edit or a git rebase during the long build cannot mix two
  # versions, and the copies' fresh mtimes make PyInstaller recompile every module (it decides
  # by mtime whether its cached archive of modules is stale).
  local src="$root/build/src$suffix"
  rm -rf "$src" && mkdir -p "$src" && cp -r engine app resources packaging "$src/"
  "$venv/bin/python" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$(dirname "$bundle")" --workpath "$root/build/pyinstaller$suffix" "$src/packaging/mmvsearch.spec"
  ln -sfn mmvsearch "$bundle/mmvsearch-app"     # one program, two names (packaging/launcher.py)
  if [ -z "${MMVSEARCH_NO_TRIM:-}" ]; then "$venv/bin/python" packaging/trim.py "$bundle"; fi
  "$bundle/mmvsearch" --version
  echo "$want" > "$stamp"
  log "bundle built in $((SECONDS - t0)) s: $(du -sh "$bundle" | cut -f1)"
}

make_tar() {
  local out="dist/$name-$version-linux-x86_64.tar.gz" t0=$SECONDS
  log "writing $out"
  tar -C "$(dirname "$bundle")" --owner=0 --group=0 -cf - mmvsearch | gzip -6 > "$out.tmp"
  mv "$out.tmp" "$out"
  log "$out: $(du -h "$out" | cut -f1) in $((SECONDS - t0)) s"
}

make_deb() {
  local out="dist/${name}_${version}_amd64.deb" t0=$SECONDS
  local stage="$root/build/deb"
  log "writing $out"
  rm -rf "$stage"
  mkdir -p "$stage/DEBIAN" "$stage/opt" "$stage/usr/bin" "$stage/usr/share/applications" \
    "$stage/usr/share/icons/hicolor/scalable/apps"
  cp -a "$bundle" "$stage/opt/mmvsearch"
  ln -s /opt/mmvsearch/mmvsearch "$stage/usr/bin/mmvsearch"
  ln -s /opt/mmvsearch/mmvsearch-app "$stage/usr/bin/mmvsearch-app"
  install -m 644 resources/mmvsearch.desktop "$stage/usr/share/applications/mmvsearch.desktop"
  install -m 644 resources/icons/mmvsearch.svg "$stage/usr/share/icons/hicolor/scalable/apps/mmvsearch.svg"
  local size; size="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
  sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" -e "s/^Package: .*/Package: $name/" \
    packaging/deb/control > "$stage/DEBIAN/control"
  if [ "$variant" != cpu ]; then
    printf 'Conflicts: mmvsearch\nReplaces: mmvsearch\nProvides: mmvsearch\n' >> "$stage/DEBIAN/control"
  fi
  install -m 755 packaging/deb/postinst packaging/deb/postrm "$stage/DEBIAN/"
  dpkg-deb --root-owner-group -Zzstd -z6 --build "$stage" "$out.tmp" >/dev/null
  mv "$out.tmp" "$out"
  rm -rf "$stage"
  log "$out: $(du -h "$out" | cut -f1) in $((SECONDS - t0)) s"
}

make_venv
make_bundle
case "$what" in
  deb) make_deb ;;
  tar) make_tar ;;
  all) make_deb; make_tar ;;
  bundle) ;;
esac
