"""The import layering of docs/ARCHITECTURE.md, checked with import-linter's contracts in pyproject.toml.

Lower layers never import the facade (engine.api) or anything above them; the engine never imports
the GUI or Qt. A new upward import (even one under ``if TYPE_CHECKING``) fails this test.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout

