#!/usr/bin/env bash
# macOS: freeze the app into mmvsearch.app and put it in a .dmg (UNTESTED: no Mac was available).
# Run on macOS from the repository root with a venv holding the runtime deps + PyInstaller:
#   bash packaging/macos/build_dmg.sh   ->   dist/mmvsearch-<version>-macos-<arch>.dmg
# .github/workflows/installers.yml runs it on macos-latest. The app is not signed or notarised;
# Gatekeeper asks the user to confirm the first start (right-click > Open).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' engine/__init__.py)"
arch="$(uname -m)"
python="${PYTHON:-python3}"
"$python" packaging/make_icons.py
"$python" -m PyInstaller --noconfirm --log-level WARN --distpath build/bundle --workpath build/pyinstaller \
  packaging/mmvsearch.spec
app="build/bundle/mmvsearch.app"
[ -d "$app" ] || { echo "PyInstaller made no $app" >&2; exit 1; }
# The command-line tool inside the app, for users who link it onto their PATH.
[ -x "$app/Contents/MacOS/mmvsearch" ] || echo "warning: $app has no command-line mmvsearch" >&2
"$app/Contents/MacOS/mmvsearch" --version
mkdir -p dist
out="dist/mmvsearch-$version-macos-$arch.dmg"
stage="$(mktemp -d)"
cp -R "$app" "$stage/"
ln -s /Applications "$stage/Applications"
rm -f "$out"
hdiutil create -volname "mmvsearch $version" -srcfolder "$stage" -ov -format UDZO "$out"
rm -rf "$stage"
echo "wrote $out ($(du -h "$out" | cut -f1))"
