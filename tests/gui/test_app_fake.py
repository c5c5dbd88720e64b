"""Fast GUI tests against FakeLibrary (no models): every user path, offscreen."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from engine.errors import QueryError
from tests.gui.fake_library import FakeLibrary, FakeRecorder, FakeTrainableLibrary

pytestmark = pytest.mark.gui


def make_folder(root: Path, names: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for n in names:
        (root / n).write_bytes(b"not really a video")
    return root


def index_and_wait(qtbot, w, paths, expect="done", timeout=10000):
    with qtbot.waitSignal(w.index_finished, timeout=timeout) as blocker:
        w.handle_dropped([str(p) for p in paths])
    assert blocker.args == [expect]
    # the panel is refreshed by a worker after the job
    qtbot.waitUntil(lambda: w.workers.running == 0, timeout=5000)


def test_window_imports_no_torch():
    code = ("import sys; import app.main, app.main_window, app.dialogs.settings, app.dialogs.finetune;"
            "import engine.api; bad=[m for m in sys.modules if m.split('.')[0] in ('torch','cv2')];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_empty_state_and_model_loading(qtbot, make_window, fake_lib):
    w = make_window(fake_lib, load_models=False)
    assert w.results_stack.currentWidget() is w.message
    assert "library is empty" in w.message.text().lower()
    assert w.library_panel.empty.isVisibleTo(w.library_panel)
    with qtbot.waitSignal(w.models_ready, timeout=5000):
        w.load_models()
        assert "Loading models" in w.model_label.text()
    assert w.models_state == "ready"
    assert "fake-model" in w.model_label.text() or "mmv-base" in w.model_label.text()


def test_drop_index_type_play(qtbot, make_window, fake_lib, tmp_path):
    folder = make_folder(tmp_path / "videos",
                         ["red_square.mp4", "blue_circle.mp4", "bad_file.mp4", "notes.txt"])
    w = make_window(fake_lib)
    index_and_wait(qtbot, w, [folder])
    panel = w.library_panel
    qtbot.waitUntil(lambda: panel.tree.topLevelItemCount() == 1, timeout=3000)
    top = panel.tree.topLevelItem(0)
    assert top.text(1) == "3" and top.text(2) == "1"
    assert top.childCount() == 1 and "bad_file.mp4" in top.child(0).text(0)
    assert "no video stream" in top.child(0).toolTip(0)
    assert any(n.level == "warning" for n in w.notifier.history)

    w.show()
    qtbot.keyClick(w, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    with qtbot.waitSignal(w.search_done, timeout=5000) as blocker:
        qtbot.keyClicks(w.search_box, "red thing")
    result = blocker.args[0]
    assert Path(result.moments[0].path).name == "red_square.mp4"
    assert w.results_stack.currentWidget() is w.grid
    first = w.grid.selected_moment()
    assert first is result.moments[0]
    assert "said" in first.reasons
    # selecting cues the player at the moment; Enter plays it
    assert w.player.moment is first
    assert w.player.slider.value() == int(first.start * 1000)
    assert w.player.slider.range_ms == (int(first.start * 1000), int(first.end * 1000))
    w.grid.setFocus()
    qtbot.keyClick(w.grid, Qt.Key.Key_Right)   # arrows move (a grid: right is the next one)
    qtbot.keyClick(w.grid, Qt.Key.Key_Return)
    assert w.player.moment is result.moments[1]
    # thumbnails arrive from a worker
    qtbot.waitUntil(lambda: len(w.grid.results.thumbs) == len(result.moments), timeout=5000)
    assert not w.grid.viewport().grab().isNull()   # the card painter runs (thumbnail, chips, snippet)
    # only one search ran for all the typing (debounced)
    assert [c for c in fake_lib.calls if c[0] == "text"] == [("text", "red thing")]


def test_stale_results_are_dropped(qtbot, make_window, fake_lib, tmp_path):
    make_folder(tmp_path / "v", ["red_a.mp4", "blue_b.mp4"])
    w = make_window(fake_lib)
    index_and_wait(qtbot, w, [tmp_path / "v"])
    slow = threading.Event()
    original = fake_lib.search_text

    def search_text(text, top_k=20):
        if text == "slow red":
            slow.wait(5)
        return original(text, top_k)
    fake_lib.search_text = search_text
    w.run_search("text", "slow red")
    qtbot.waitUntil(lambda: "search" not in w.workers._waiting, timeout=5000)  # "slow red" runs
    with qtbot.waitSignal(w.search_done, timeout=5000) as blocker:
        w.run_search("text", "blue")
        w.run_search("text", "blue")   # replaces the waiting "blue": only one more search runs
        slow.set()
    qtbot.waitUntil(lambda: w.workers.running == 0, timeout=5000)
    assert [c[1] for c in fake_lib.calls if c[0] == "text"] == ["slow red", "blue"]
    assert Path(blocker.args[0].moments[0].path).name == "blue_b.mp4"
    assert Path(w.grid.results.moments[0].path).name == "blue_b.mp4"  # the late "slow red" did not land


def test_search_error_is_a_notification(qtbot, make_window, fake_lib, tmp_path):
    make_folder(tmp_path / "v", ["red_a.mp4"])
    w = make_window(fake_lib)
    index_and_wait(qtbot, w, [tmp_path / "v"])

    def boom(text, top_k=20):
        raise QueryError("that query makes no sense")
    fake_lib.search_text = boom
    w.run_search("text", "???")
    qtbot.waitUntil(lambda: any(n.level == "error" for n in w.notifier.history), timeout=5000)
    note = [n for n in w.notifier.history if n.level == "error"][-1]
    assert note.text == "that query makes no sense"
    assert "QueryError" in note.details
    assert "did not work" in w.message.text()


def test_microphone_search_shows_transcript(qtbot, make_window, fake_lib, tmp_path):
    make_folder(tmp_path / "v", ["dog_park.mp4", "red_car.mp4"])
    FakeRecorder.instances.clear()
    w = make_window(fake_lib, recorder_factory=FakeRecorder)
    index_and_wait(qtbot, w, [tmp_path / "v"])
    mic = w.search_bar.mic
    qtbot.mouseClick(mic.button, Qt.MouseButton.LeftButton)
    assert mic.recording and mic.timer.isActive()
    rec = FakeRecorder.instances[-1]
    assert rec.started and rec.sample_rate == 16000
    qtbot.waitUntil(lambda: mic.meter.level > 0.5, timeout=2000)
    with qtbot.waitSignal(w.search_done, timeout=5000) as blocker:
        qtbot.mouseClick(mic.stop_btn, Qt.MouseButton.LeftButton)
    assert rec.stopped and not mic.timer.isActive()
    assert blocker.args[0].transcript == "a dog barking"
    assert "a dog barking" in w.search_bar.info.text()
    assert Path(w.grid.results.moments[0].path).name == "dog_park.mp4"
    assert fake_lib.calls[-1] == ("audio", (24000,))


def test_microphone_stops_at_max_length(qtbot, make_window, fake_lib):
    w = make_window(fake_lib, recorder_factory=FakeRecorder)
    mic = w.search_bar.mic
    mic.start()
    with qtbot.waitSignal(w.search_done, timeout=5000):
        mic.recorder.elapsed = mic.max_seconds  # the meter timer notices and stops
    assert not mic.recording


def test_microphone_failure_is_a_notification(qtbot, make_window, fake_lib):
    from engine.errors import RecorderError

    def broken():
        raise RecorderError("no input device")
    w = make_window(fake_lib, recorder_factory=broken)
    w.search_bar.mic.toggle()
    assert not w.search_bar.mic.recording
    assert w.notifier.history[-1].text == "no input device"


def test_drop_audio_and_image_search(qtbot, make_window, fake_lib, tmp_path):
    make_folder(tmp_path / "v", ["dog_park.mp4", "red_car.mp4"])
    w = make_window(fake_lib)
    index_and_wait(qtbot, w, [tmp_path / "v"])
    wav, png = tmp_path / "bark.wav", tmp_path / "red.png"
    wav.write_bytes(b"RIFF")
    png.write_bytes(b"PNG")
    with qtbot.waitSignal(w.search_done, timeout=5000):
        w.search_box.file_dropped.emit(str(wav), "audio")
    assert fake_lib.calls[-1] == ("audio", str(wav))
    with qtbot.waitSignal(w.search_done, timeout=5000) as blocker:
        w.handle_dropped([str(png)])   # a picture dropped anywhere is a query too
    assert fake_lib.calls[-1] == ("image", str(png))
    assert Path(blocker.args[0].moments[0].path).name == "red_car.mp4"
    assert "Picture: red.png" in w.search_bar.info.text()
    with qtbot.waitSignal(w.search_done, timeout=5000):
        w.player.more_like_this.emit(blocker.args[0].moments[0])
    assert fake_lib.calls[-1][0] == "like"


def test_cancel_mid_index_keeps_library_consistent(qtbot, make_window, tmp_path):
    lib = FakeLibrary(tmp_path / "lib", file_delay=0.05)
    folder = make_folder(tmp_path / "many", [f"clip_{i:02d}.mp4" for i in range(40)])
    w = make_window(lib)
    with qtbot.waitSignal(w.index_finished, timeout=10000) as blocker:
        w.index_paths([str(folder)])
        qtbot.waitUntil(lambda: w.library_panel.bar.value() > 0, timeout=5000)
        qtbot.mouseClick(w.library_panel.cancel_btn, Qt.MouseButton.LeftButton)
    assert blocker.args == ["cancelled"]
    qtbot.waitUntil(lambda: w.workers.running == 0, timeout=5000)
    rows = lib.videos()
    done = [r for r in rows if r.status == "done"]
    assert 0 < len(done) < 40
    assert all(r.n_clips == 3 for r in done)          # nothing half-written
    assert not w.library_panel.job_box.isVisible()
    assert w.library_panel.tree.topLevelItem(0).text(1) == str(len(rows))
    # indexing again picks up the rest (incremental)
    index_and_wait(qtbot, w, [folder])
    assert sum(r.status == "done" for r in lib.videos()) == 40


def test_pause_and_resume(qtbot, make_window, tmp_path):
    lib = FakeLibrary(tmp_path / "lib", file_delay=0.05)
    folder = make_folder(tmp_path / "many", [f"clip_{i:02d}.mp4" for i in range(30)])
    w = make_window(lib)
    w.show()
    with qtbot.waitSignal(w.index_finished, timeout=10000) as blocker:
        w.index_paths([str(folder)])
        qtbot.waitUntil(lambda: w.library_panel.bar.value() > 0, timeout=5000)
        qtbot.mouseClick(w.library_panel.pause_btn, Qt.MouseButton.LeftButton)
    assert blocker.args == ["paused"]
    assert w.library_panel.pause_btn.text() == "Resume"
    assert w.library_panel.job_box.isVisible()
    with qtbot.waitSignal(w.index_finished, timeout=10000) as blocker:
        qtbot.mouseClick(w.library_panel.pause_btn, Qt.MouseButton.LeftButton)
    assert blocker.args == ["done"]
    assert sum(r.status == "done" for r in lib.videos()) == 30


def test_second_drop_is_queued(qtbot, make_window, tmp_path):
    lib = FakeLibrary(tmp_path / "lib", file_delay=0.02)
    a = make_folder(tmp_path / "a", [f"a{i}.mp4" for i in range(10)])
    b = make_folder(tmp_path / "b", ["b1.mp4"])
    w = make_window(lib)
    w.index_paths([str(a)])
    w.index_paths([str(b)])
    assert w.notifier.history[-1].title == "Queued"
    qtbot.waitUntil(lambda: len(lib.videos()) == 11 and w.index_job is None, timeout=10000)


def test_rescan_and_remove(qtbot, make_window, fake_lib, tmp_path):
    folder = make_folder(tmp_path / "v", ["red_a.mp4"])
    w = make_window(fake_lib)
    index_and_wait(qtbot, w, [folder])
    (folder / "red_b.mp4").write_bytes(b"x")
    panel = w.library_panel
    qtbot.waitUntil(lambda: panel.tree.topLevelItemCount() == 1, timeout=3000)
    panel.tree.setCurrentItem(panel.tree.topLevelItem(0))
    with qtbot.waitSignal(w.index_finished, timeout=5000):
        qtbot.mouseClick(panel.rescan_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.tree.topLevelItemCount() == 1 and panel.tree.topLevelItem(0).text(1) == "2",
                    timeout=3000)
    panel.tree.setCurrentItem(panel.tree.topLevelItem(0))
    qtbot.mouseClick(panel.remove_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.tree.topLevelItemCount() == 0 and w.workers.running == 0, timeout=3000)
    assert fake_lib.videos() == []
    assert panel.empty.isVisibleTo(panel)


def test_shortcuts_focus_search(qtbot, make_window, fake_lib):
    w = make_window(fake_lib)
    w.show()
    qtbot.waitExposed(w)
    w.windowHandle().requestActivate()   # shortcuts only fire in the active window
    qtbot.waitUntil(w.isActiveWindow, timeout=2000)
    other = w.library_panel.add_btn
    other.setFocus()
    qtbot.keyClick(other, Qt.Key.Key_Slash)
    assert w.search_box.hasFocus()
    other.setFocus()
    qtbot.keyClick(other, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert w.search_box.hasFocus()
    qtbot.keyClicks(w.search_box, "a/b")   # "/" types inside the box
    assert w.search_box.text() == "a/b"
    qtbot.keyClick(w.search_box, Qt.Key.Key_Escape)
    assert w.search_box.text() == ""


def test_window_state_persists(qtbot, make_window, fake_lib, qsettings):
    w = make_window(fake_lib)
    w.resize(700, 500)
    w.show()
    w.close()
    assert qsettings.value("window/geometry") is not None
    w2 = make_window(fake_lib)
    assert (w2.width(), w2.height()) == (700, 500)


def test_settings_dialog_saves(qtbot, make_window, fake_lib, monkeypatch):
    from app.dialogs import settings as settings_mod
    from app.dialogs.settings import SettingsDialog

    monkeypatch.setattr(settings_mod, "detect_devices", lambda: ["cpu"])
    w = make_window(fake_lib)
    dlg = SettingsDialog(fake_lib, w.workers, w)
    qtbot.addWidget(dlg)
    qtbot.waitUntil(lambda: "Found on this machine: CPU" in dlg.detected.text(), timeout=3000)
    assert "not found" in dlg.device.itemText(dlg.device.findData("cuda"))
    dlg.device.setCurrentIndex(dlg.device.findData("cpu"))
    dlg.clip.setValue(2.5)
    dlg.transcribe.setChecked(False)
    assert not dlg.read_text.isChecked()   # on-screen text is off by default (docs/ocr.md)
    dlg.read_text.setChecked(True)
    dlg.excluded.setPlainText("*/tmp/*\n\n*.part\n")
    assert not dlg.library_changed()
    dlg.apply()
    from engine.library import Settings

    saved = Settings.load(fake_lib.paths.settings)
    assert (saved.device, saved.clip_seconds, saved.transcribe, saved.read_text) == ("cpu", 2.5, False, True)
    assert saved.excluded_patterns == ["*/tmp/*", "*.part"]


def test_read_chip_shows_the_words_read(qtbot):
    from PySide6.QtGui import QPainter, QPixmap

    from app.widgets.results_grid import chip_label
    from engine.search.moments import Moment

    m = Moment(1, "/v/a.mp4", 4.0, 10.0, 2.0, [1], 1, 4.0, ["read", "seen"], read_text="EXIT 12")
    pix = QPixmap(10, 10)
    p = QPainter(pix)
    try:
        assert chip_label(p, "read", m) == "read “EXIT 12”"
        assert chip_label(p, "seen", m) == "seen"
        m.read_text = "a very long sign " * 10
        label = chip_label(p, "read", m)
        assert label.startswith("read “a very") and label.endswith("…")
    finally:
        p.end()


def test_finetune_is_offered_for_every_library(qtbot, make_window, fake_lib):
    w = make_window(fake_lib)  # training is part of engine.contract: no probing, always there
    assert w.finetune_action.isEnabled()


def test_finetune_dialog_trains_and_switches_back(qtbot, make_window, tmp_path):
    lib = FakeTrainableLibrary(tmp_path / "lib")
    w = make_window(lib)
    assert w.finetune_action.isEnabled()
    w.open_finetune()
    dlg = w.finetune_dialog
    qtbot.waitUntil(lambda: dlg.models.count() == 1, timeout=3000)
    dlg.deep.setChecked(True)
    with qtbot.waitSignal(dlg.model_changed, timeout=10000) as blocker:
        qtbot.mouseClick(dlg.start_btn, Qt.MouseButton.LeftButton)
    assert blocker.args == ["ft-1"]
    assert lib.train_requests == [{"minutes": 10.0, "device": dlg.device.currentData(), "deep": True}]
    assert len(dlg.plot.series["loss"]) == 20
    assert len(dlg.plot.series["held-out loss"]) == 4  # one point per epoch
    text = dlg.figures.text()
    assert "3 held-out videos, never trained on" in text and "sound → picture R@1" in text
    assert "0.41 [0.20–0.90]" in text and "0.55 [0.20–0.90]" in text
    assert "3 of 14 videos held out" in dlg.note.text()
    from PySide6.QtWidgets import QLabel

    assert "unless you also fine-tune the picture layers" in dlg.findChildren(QLabel)[0].text()
    assert not dlg.plot.grab().isNull()
    qtbot.waitUntil(lambda: dlg.models.count() == 2, timeout=3000)
    assert dlg.back_btn.isEnabled()
    with qtbot.waitSignal(dlg.model_changed, timeout=5000) as blocker:
        qtbot.mouseClick(dlg.back_btn, Qt.MouseButton.LeftButton)
    assert blocker.args == ["mmv-base-v1"] and lib.active_model_id == "mmv-base-v1"
    dlg.close()


def test_finetune_figures_say_when_a_library_is_too_small_to_judge():
    from app.dialogs.finetune import figures_text

    text = figures_text({"metrics": {"held_out": {"judged": False, "note": "too small to judge: 5 videos"}}})
    assert "too small to judge: 5 videos" in text and "before" not in text
    assert figures_text({"metrics": {"before": {"a2v_r1_video": 0.1}}}) == ""  # training-clip figures: never shown


def test_finetune_cancel(qtbot, make_window, tmp_path):
    lib = FakeTrainableLibrary(tmp_path / "lib")
    orig = lib.train

    def slow_train(**kw):
        for p in orig(**kw):
            time.sleep(0.05)
            yield p
    lib.train = slow_train
    w = make_window(lib)
    w.open_finetune()
    dlg = w.finetune_dialog
    dlg.start()
    qtbot.waitUntil(lambda: len(dlg.plot.series.get("loss", [])) >= 2, timeout=5000)
    dlg.cancel()
    qtbot.waitUntil(lambda: dlg.job is None, timeout=5000)
    assert "Cancelled" in dlg.status.text()
    assert lib.active_model_id == "mmv-base-v1"
    dlg.close()


def test_real_recorder_with_fake_input_device(qtbot, make_window, fake_lib, tmp_path):
    """The real engine Recorder on a fake ALSA microphone, feeding a (fake) audio search."""
    import numpy as np

    from engine.speech.recorder import Recorder
    from tests.speech_fixtures import fake_microphone

    t = np.arange(16000 * 3) / 16000
    wave = (0.4 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    with fake_microphone(tmp_path, wave) as mic_name:
        w = make_window(fake_lib, recorder_factory=lambda: Recorder(device=mic_name, sample_rate=16000,
                                                                   max_seconds=30))
        mic = w.search_bar.mic
        with qtbot.waitSignal(w.search_done, timeout=20000):
            mic.start()
            levels: list[float] = []
            # The ALSA file device is not paced in real time: it may fill the 30 s limit at once and
            # stop the recording by itself (before the meter ever shows the tone), so only stop it
            # when it is still running, and check the tone in what was recorded.
            qtbot.waitUntil(lambda: not mic.recording or (levels.append(mic.recorder.level)
                                                          or (mic.recorder.elapsed >= 1.0 and max(levels) > 0.05)),
                            timeout=15000)
            if mic.recording:
                mic.stop()
    kind, shape = fake_lib.calls[-1]
    assert kind == "audio" and shape[0] >= 16000
    recorded = fake_lib.last_audio
    assert float(np.sqrt(np.mean(recorded[:16000 * 3] ** 2))) > 0.2, "the fake microphone's tone was not recorded"


def test_main_entry_point_shows_the_window(tmp_path):
    """``mmvsearch-app`` starts, paints its window, and exits cleanly (bench probe mode)."""
    import os

    env = {**os.environ, "MMVSEARCH_STARTUP_PROBE": repr(time.time()), "XDG_CONFIG_HOME": str(tmp_path),
           "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, "-m", "app.main", "--library", str(tmp_path / "lib")],
                         cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "visible_s=" in out.stdout
    assert (tmp_path / "lib" / "library.db").exists()


def test_watched_folder_is_indexed_when_files_arrive(qtbot, make_window, fake_lib, tmp_path, monkeypatch):
    from app.dialogs import settings as settings_mod
    from app.dialogs.settings import SettingsDialog

    monkeypatch.setattr(settings_mod, "detect_devices", lambda: ["cpu"])
    folder = make_folder(tmp_path / "watched", ["red_a.mp4"])
    w = make_window(fake_lib)
    index_and_wait(qtbot, w, [folder])
    dlg = SettingsDialog(fake_lib, w.workers, w, folders=[f.path for f in w.library_panel.snapshot.folders])
    qtbot.addWidget(dlg)
    dlg.watch.setChecked(True)
    dlg.apply()
    assert fake_lib.settings.watch_folders == [str(folder)]
    w.apply_watch_setting()
    w.watcher.timer.setInterval(100)
    with qtbot.waitSignal(w.index_finished, timeout=10000):
        (folder / "sub").mkdir()
        (folder / "blue_new.mp4").write_bytes(b"x")
    qtbot.waitUntil(lambda: len(fake_lib.videos()) == 2 and w.workers.running == 0, timeout=5000)


def test_switch_library(qtbot, make_window, fake_lib, tmp_path, qsettings):
    make_folder(tmp_path / "v", ["red_a.mp4"])
    w = make_window(fake_lib)
    index_and_wait(qtbot, w, [tmp_path / "v"])
    assert w.library_panel.tree.topLevelItemCount() == 1
    w.switch_library(str(tmp_path / "other-library"))
    assert fake_lib.closed
    assert Path(w.lib.paths.root) == (tmp_path / "other-library").resolve()
    qtbot.waitUntil(lambda: w.workers.running == 0, timeout=5000)
    assert w.library_panel.tree.topLevelItemCount() == 0
    assert "library is empty" in w.message.text().lower()
    assert qsettings.value("library/last") == str(w.lib.paths.root)
    w.close()
    w.lib.close()


def test_open_and_reveal_go_to_the_desktop(qtbot, make_window, fake_lib, tmp_path, monkeypatch):
    from app import desktop

    opened, revealed = [], []
    monkeypatch.setattr(desktop, "open_in_system_player", lambda p: opened.append(p) or True)
    monkeypatch.setattr(desktop, "reveal_in_file_manager", lambda p: revealed.append(p) or False)
    make_folder(tmp_path / "v", ["red_a.mp4"])
    w = make_window(fake_lib)
    index_and_wait(qtbot, w, [tmp_path / "v"])
    with qtbot.waitSignal(w.search_done, timeout=5000) as blocker:
        w.run_search("text", "red")
    m = blocker.args[0].moments[0]
    w.player.ext_btn.click()
    w.grid.reveal.emit(m)
    assert opened == [m.path] and revealed == [m.path]
    assert w.notifier.history[-1].title == "Could not show the file"   # reveal said it failed
