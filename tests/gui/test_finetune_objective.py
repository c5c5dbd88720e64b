"""The fine-tune dialog passes the chosen objective to Library.train (and nothing for the default)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from engine.train.cli import OBJECTIVE_NAMES
from tests.gui.fake_library import FakeTrainableLibrary

pytestmark = pytest.mark.gui


class ObjectiveLibrary(FakeTrainableLibrary):
    def train(self, token=None, **options):
        yield from super().train(token, **options)
        self.train_requests[-1]["objective"] = options.get("objective", "mmv")


@pytest.mark.parametrize("choice", ["mmv", "swav"])
def test_dialog_trains_with_the_chosen_objective(qtbot, make_window, tmp_path, choice):
    lib = ObjectiveLibrary(tmp_path / "lib")
    w = make_window(lib)
    w.open_finetune()
    dlg = w.finetune_dialog
    assert [dlg.objective.itemData(i) for i in range(dlg.objective.count())] == list(OBJECTIVE_NAMES)
    dlg.objective.setCurrentIndex(OBJECTIVE_NAMES.index(choice))
    with qtbot.waitSignal(dlg.model_changed, timeout=10000):
        qtbot.mouseClick(dlg.start_btn, Qt.MouseButton.LeftButton)
    assert lib.train_requests[-1]["objective"] == choice
    dlg.close()
