"""The library panel's "Retry failed" button: shown for a folder with failed files, it resets them
(Library.reset_errors) and indexes the folder again."""

import pytest
from PySide6.QtCore import Qt

from tests.gui.test_app_fake import index_and_wait, make_folder

pytestmark = pytest.mark.gui


def test_retry_button_resets_errors_and_reindexes(qtbot, make_window, fake_lib, tmp_path):
    folder = make_folder(tmp_path / "videos", ["red_square.mp4", "bad_file.mp4"])
    calls = []
    fake_lib.reset_errors = lambda f: calls.append(str(f)) or 1
    w = make_window(fake_lib)
    w.show()
    panel = w.library_panel
    assert not panel.retry_btn.isVisibleTo(panel)                  # nothing failed yet: no button
    index_and_wait(qtbot, w, [folder])
    qtbot.waitUntil(lambda: panel.tree.topLevelItemCount() == 1, timeout=3000)
    panel.tree.setCurrentItem(panel.tree.topLevelItem(0))
    qtbot.waitUntil(lambda: panel.retry_btn.isEnabled(), timeout=3000)
    assert panel.retry_btn.isVisibleTo(panel)
    with qtbot.waitSignal(w.index_finished, timeout=10000) as blocker:
        qtbot.mouseClick(panel.retry_btn, Qt.MouseButton.LeftButton)
    assert blocker.args == ["done"]
    assert calls == [str(folder.resolve())]
    qtbot.waitUntil(lambda: w.workers.running == 0, timeout=5000)
