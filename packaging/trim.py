"""Remove from the frozen bundle what the app never loads (headers, tests, unused Qt parts).

``python packaging/trim.py build/bundle/mmvsearch`` (packaging/build.sh runs it). Candidates are
moved aside first; any shared library that a kept binary still links to (ELF DT_NEEDED) is put
back, so trimming can never break the dynamic linking of what stays. Plugins and data files are
loaded by path, so those rules are explicit and packaging/smoke_test.sh checks the app after.
Prints the size before and after, and what each rule saved.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
from pathlib import Path

# (rule name, glob patterns relative to the bundle's _internal folder)
RULES: list[tuple[str, list[str]]] = [
    ("C/C++ headers, CMake files, static libs", [
        "torch/include/**", "torch/share/**", "**/*.h", "**/*.hpp", "**/*.cuh", "**/*.a", "**/*.cmake",
        "**/*.pyi", "**/*.pxd", "**/*.pyx",
    ]),
    ("test folders and test programs", [
        "torch/test/**", "**/tests/**", "torch/testing/_internal/**", "torch/bin/**",
        "torch/lib/*test*.so", "torch/lib/libbackend_with_compiler.so", "torch/lib/libaoti_custom_ops.so",
    ]),
    ("Qt translations", ["PySide6/Qt/translations/**"]),
    ("Qt QML and Quick", ["PySide6/Qt/qml/**", "PySide6/Qt/lib/libQt6Qml*", "PySide6/Qt/lib/libQt6Quick*"]),
    ("Qt WebEngine, PDF, 3D, charts", [
        "PySide6/Qt/lib/libQt6WebEngine*", "PySide6/Qt/lib/libQt6Pdf*", "PySide6/Qt/lib/libQt63D*",
        "PySide6/Qt/lib/libQt6Charts*", "PySide6/Qt/lib/libQt6DataVisualization*", "PySide6/Qt/lib/libQt6Graphs*",
        "PySide6/Qt/libexec/**", "PySide6/Qt/resources/**",
    ]),
    ("Qt plugins the app never loads", [
        f"PySide6/Qt/plugins/{d}/**" for d in (
            "qmltooling", "designer", "sqldrivers", "position", "sensors", "webview", "geometryloaders",
            "sceneparsers", "renderers", "renderplugins", "canbus", "texttospeech", "assetimporters",
            "scxmldatamodel", "qmllint", "virtualkeyboard", "help", "printsupport", "generic")
    ] + [
        # The camera and screen-capture half of QtMultimedia is never used; only playback is.
    ]),
]


# Matched by a rule above but needed: torch finds its shared-memory helper by path at import.
KEEP = ["torch/bin/torch_shm_manager"]


def _internal(bundle: Path) -> Path:
    inner = bundle / "_internal"
    return inner if inner.is_dir() else bundle


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _matches(rel: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(rel, pat) or (pat.endswith("/**") and rel.startswith(pat[:-3] + "/"))
               for pat in patterns)


def _needed(path: Path) -> set[str]:
    """The DT_NEEDED entries of an ELF file (empty for anything else)."""
    with path.open("rb") as fh:
        if fh.read(4) != b"\x7fELF":
            return set()
    out = subprocess.run(["objdump", "-p", str(path)], capture_output=True, text=True).stdout
    return {line.split()[1] for line in out.splitlines() if line.strip().startswith("NEEDED")}


def trim(bundle: Path) -> dict[str, int]:
    inner = _internal(bundle)
    trash = bundle.parent / (bundle.name + ".trimmed")
    shutil.rmtree(trash, ignore_errors=True)
    saved: dict[str, int] = {}
    moved: dict[str, tuple[Path, Path, str]] = {}   # file name -> (original, trashed, rule)
    for rule, patterns in RULES:
        for path in sorted(inner.rglob("*")):
            if not (path.is_file() or path.is_symlink()):
                continue
            rel = path.relative_to(inner).as_posix()
            if _matches(rel, patterns) and rel not in KEEP:
                dest = trash / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                size = 0 if path.is_symlink() else path.stat().st_size
                shutil.move(str(path), dest)
                moved[path.name] = (path, dest, rule)
                saved[rule] = saved.get(rule, 0) + size
    _restore_linked(bundle, moved, saved)
    shutil.rmtree(trash, ignore_errors=True)
    for d in sorted((p for p in inner.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(d.iterdir()):
            d.rmdir()
    return saved


def _restore_linked(bundle: Path, moved: dict[str, tuple[Path, Path, str]], saved: dict[str, int]) -> None:
    """Put back every trimmed library that a kept binary links to, until nothing more is needed."""
    while True:
        needed: set[str] = set()
        for path in bundle.rglob("*"):
            if path.is_file() and not path.is_symlink() and (".so" in path.name or os.access(path, os.X_OK)):
                needed |= _needed(path)
        back = [name for name in needed if name in moved]
        if not back:
            return
        for name in back:
            original, trashed, rule = moved.pop(name)
            original.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(trashed), original)
            saved[rule] -= 0 if original.is_symlink() else original.stat().st_size
            print(f"  kept {original.relative_to(bundle)} (linked by a kept binary)")


def main(argv: list[str]) -> int:
    bundle = Path(argv[1]).resolve()
    before = _size(bundle)
    saved = trim(bundle)
    after = _size(bundle)
    for rule, n in saved.items():
        print(f"  {rule}: -{n / 2**20:.1f} MiB")
    print(f"trimmed {bundle}: {before / 2**20:.0f} MiB -> {after / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
