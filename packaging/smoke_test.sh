#!/usr/bin/env bash
# Test an installer the way a user meets it: install it, then use only the installed commands,
# from a temporary folder, with a clean environment (no source tree, no venv, no Python on PATH)
# and the network off (unshare -n), then uninstall and check that the user's library survives.
#   packaging/smoke_test.sh deb [dist/mmvsearch_<v>_amd64.deb]        (needs root: dpkg -i)
#   packaging/smoke_test.sh tar [dist/mmvsearch-<v>-linux-x86_64.tar.gz]
# Checks: --version; the app opens a window offscreen (time to first paint); indexing generated
# videos with speech and sounds (+ two real videos from ../shared/media when present); text
# search through "said", "seen" and "heard"; --audio search; a one-minute `train`; uninstall.
# Prints one "ok"/"FAIL" line per check and exits non-zero when any check failed.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kind="${1:?usage: $0 deb|tar [artifact]}"
version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$root/engine/__init__.py")"
case "$kind" in
  deb) artifact="${2:-$root/dist/mmvsearch_${version}_amd64.deb}" ;;
  tar) artifact="${2:-$root/dist/mmvsearch-${version}-linux-x86_64.tar.gz}" ;;
  *) echo "usage: $0 deb|tar [artifact]" >&2; exit 2 ;;
esac
[ -f "$artifact" ] || { echo "no artifact $artifact (build it: bash packaging/build.sh $kind)" >&2; exit 2; }
artifact="$(cd "$(dirname "$artifact")" && pwd)/$(basename "$artifact")"
# The harness (not the app) needs numpy + PyAV to generate media and a Python to read JSON.
py="${MMVSEARCH_SMOKE_PYTHON:-}"
for cand in "$root/build/venv/bin/python" "$root/.venv/bin/python"; do
  [ -z "$py" ] && [ -x "$cand" ] && py="$cand"
done
[ -n "$py" ] || { echo "no Python with numpy+av for the harness (set MMVSEARCH_SMOKE_PYTHON)" >&2; exit 2; }
media_root="${MMVSEARCH_MEDIA:-$root/../shared/media}"

work="$(mktemp -d /tmp/mmv-smoke.XXXXXX)"
home="$work/home"; mkdir -p "$home"
failures=0
ok() { echo "ok    $*"; }
fail() { echo "FAIL  $*"; failures=$((failures + 1)); }
check() { local what="$1"; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }

net=(unshare -n)
if ! unshare -n true 2>/dev/null; then net=(); echo "note: unshare -n not permitted here; network NOT disabled"; fi

"$py" "$root/packaging/smoke_media.py" "$work/media" >/dev/null || { echo "media generation failed" >&2; exit 2; }
real=()
for f in video/demos/videollama__boat.mp4 video/demos/videollama__dog_barking.mp4; do
  [ -f "$media_root/$f" ] && real+=("$media_root/$f")
done

# ---- install
t0=$(date +%s.%N)
if [ "$kind" = deb ]; then
  if ! dpkg -i "$artifact" >"$work/install.log" 2>&1; then
    apt-get install -f -y -qq >>"$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }
  fi
  bindir=/usr/bin
  appdir=/opt/mmvsearch
  check "deb installs the .desktop file and icon" test -f /usr/share/applications/mmvsearch.desktop -a \
    -f /usr/share/icons/hicolor/scalable/apps/mmvsearch.svg
else
  mkdir -p "$work/unpacked"
  tar -C "$work/unpacked" -xzf "$artifact"
  bindir="$work/unpacked/mmvsearch"
  appdir="$bindir"
fi
echo "installed in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s: $(du -sh "$appdir" | cut -f1) at $appdir"

# Every app command: from the temp folder, clean environment, no network.
run() {
  (cd "$work" && env -i HOME="$home" PATH="$bindir:/usr/bin:/bin" LANG=C.UTF-8 \
    QT_QPA_PLATFORM=offscreen XDG_RUNTIME_DIR="$work" "${net[@]}" "$@")
}
json_top() {   # json_top FILE FIELD -> the first moment's field (path basename or reasons joined)
  "$py" -c 'import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
if not rows: print(""); raise SystemExit
r = rows[0]
print(os.path.basename(r["path"]) if sys.argv[2] == "path" else "/".join(r[sys.argv[2]]))' "$1" "$2"
}
any_reason() {   # any_reason FILE REASON: some moment matched through REASON
  "$py" -c 'import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
raise SystemExit(0 if any(sys.argv[2] in r["reasons"] for r in rows) else 1)' "$1" "$2"
}

check "the installed mmvsearch is the one on PATH" test "$(run sh -c 'command -v mmvsearch')" = "$bindir/mmvsearch"
check "the bundle carries its own Python runtime" sh -c "ls '$appdir'/_internal/libpython3*.so* >/dev/null"
check "mmvsearch --version says $version" test "$(run mmvsearch --version)" = "mmvsearch $version"

probe=$(run env MMVSEARCH_STARTUP_PROBE="$(date +%s.%N)" timeout 120 mmvsearch-app 2>"$work/app.err")
if [[ "$probe" == visible_s=* ]]; then ok "app window visible offscreen (cold start ${probe#visible_s=} s)"
else fail "app window: '$probe' $(tail -3 "$work/app.err")"; fi

t0=$SECONDS
if run mmvsearch index --transcribe "$work/media/videos" "${real[@]}" >"$work/index.log" 2>&1; then
  ok "index --transcribe of $((3 + ${#real[@]})) videos ($((SECONDS - t0)) s)"
else fail "index: $(tail -5 "$work/index.log")"; fi
run mmvsearch status >"$work/status.log" 2>&1
check "status runs" test -s "$work/status.log"

run mmvsearch search --json --text "the keeper feeds seagulls at the lighthouse" >"$work/said.json" 2>"$work/err.log"
top="$(json_top "$work/said.json" path)"; why="$(json_top "$work/said.json" reasons)"
check "said: spoken sentence finds lighthouse_talk.mp4 (top: $top [$why])" \
  test "$top" = lighthouse_talk.mp4 -a "${why/said/}" != "$why"

run mmvsearch search --json --audio "$work/media/bursts.wav" >"$work/audio.json" 2>"$work/err.log"
top="$(json_top "$work/audio.json" path)"; why="$(json_top "$work/audio.json" reasons)"
check "--audio: noise bursts find lighthouse_talk.mp4 (top: $top [$why])" \
  test "$top" = lighthouse_talk.mp4 -a "${why/heard/}" != "$why"

if [ ${#real[@]} -eq 2 ]; then
  run mmvsearch search --json --text "a boat on the water" >"$work/seen.json" 2>"$work/err.log"
  top="$(json_top "$work/seen.json" path)"; why="$(json_top "$work/seen.json" reasons)"
  check "seen: 'a boat on the water' finds videollama__boat.mp4 (top: $top [$why])" \
    test "$top" = videollama__boat.mp4 -a "${why/seen/}" != "$why"
else
  echo "skip  seen: the real videos are not at $media_root (set MMVSEARCH_MEDIA)"
fi

t0=$SECONDS
if run mmvsearch train --minutes 1 >"$work/train.log" 2>&1; then ok "train --minutes 1 ($((SECONDS - t0)) s)"
else fail "train: $(tail -5 "$work/train.log")"; fi
if run mmvsearch models >"$work/models.log" 2>&1 && [ "$(grep -c . "$work/models.log")" -ge 2 ]; then
  ok "models lists the fine-tuned model"
else fail "models: $(tail -3 "$work/models.log")"; fi

run mmvsearch search --json --top 20 --text "noise bursts, static hiss" >"$work/heard.json" 2>"$work/err.log"
check "heard: a text query matches through the sound channel after training" any_reason "$work/heard.json" heard
run mmvsearch search --json --text "the keeper feeds seagulls at the lighthouse" >"$work/said2.json" 2>"$work/err.log"
check "said still finds lighthouse_talk.mp4 after training" test "$(json_top "$work/said2.json" path)" = lighthouse_talk.mp4

# ---- uninstall: the program goes, the library stays
library="$home/.local/share/mmvsearch"
before="$(cd "$library" 2>/dev/null && find . -type f -exec sha256sum {} + | sort | sha256sum)"
check "library exists in the user's home" test -f "$library/library/library.db"
if [ "$kind" = deb ]; then
  dpkg --purge mmvsearch >"$work/remove.log" 2>&1
  check "dpkg --purge removes /opt/mmvsearch" test ! -e /opt/mmvsearch
  check "no mmvsearch commands left in /usr/bin" test ! -e /usr/bin/mmvsearch -a ! -e /usr/bin/mmvsearch-app
  check "no .desktop file or icon left" test ! -e /usr/share/applications/mmvsearch.desktop -a \
    ! -e /usr/share/icons/hicolor/scalable/apps/mmvsearch.svg
  check "dpkg knows no mmvsearch files" test -z "$(dpkg -L mmvsearch 2>/dev/null)"
else
  rm -rf "$work/unpacked"
  check "deleting the unpacked folder removes the program" test ! -e "$work/unpacked"
fi
after="$(cd "$library" 2>/dev/null && find . -type f -exec sha256sum {} + | sort | sha256sum)"
check "the user's library is untouched by the uninstall" test -n "$before" -a "$before" = "$after"

echo "logs in $work"
if [ "$failures" -eq 0 ]; then echo "smoke test ($kind): all checks passed"; else echo "smoke test ($kind): $failures check(s) failed"; fi
[ "$failures" -eq 0 ]
