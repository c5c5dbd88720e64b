"""End to end through the GUI with the real engine (models, indexer, searcher, recorder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.synth import make_video

pytestmark = [pytest.mark.slow, pytest.mark.gui]

PHRASE = "Please put the red cup on the kitchen table."


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    from tests.speech_fixtures import make_narrated_video, require_espeak

    require_espeak()
    root = tmp_path_factory.mktemp("videos")
    a = root / "home"
    make_video(a / "red_square.mp4", color=(255, 0, 0), shape="square", tone_hz=440.0, seconds=8.0)
    make_video(a / "noise_stripes.mp4", color=(0, 160, 0), shape="stripes", noise=True, seconds=8.0)
    # the sentence starts after 5 s of silence, so the moment does not start at 0
    make_narrated_video(a / "kitchen_talk.mp4", [5.0, PHRASE, 1.5])
    (a / "broken.mp4").write_bytes(b"this is not a video at all")
    b = root / "more"
    for i in range(6):
        make_video(b / f"circle_{i}.mp4", color=(40 * i, 0, 255 - 40 * i), shape="circle",
                   tone_hz=300.0 + 100 * i, seconds=8.0)
    return a, b


def test_drop_index_search_play_mic_and_cancel(qtbot, make_window, tmp_path, videos):
    from engine.api import Library
    from engine.speech.recorder import Recorder
    from tests.speech_fixtures import fake_microphone, speak

    home, more = videos
    lib = Library(tmp_path / "library", device="cpu")
    w = make_window(lib, multimedia=True)
    w.show()
    qtbot.waitUntil(lambda: w.models_state == "ready", timeout=300_000)

    # 1. drop a folder: indexing completes; the broken file is listed with its reason
    with qtbot.waitSignal(w.index_finished, timeout=600_000) as blocker:
        w.handle_dropped([str(home)])
        qtbot.waitUntil(lambda: w.library_panel.job_box.isVisible(), timeout=5000)
    assert blocker.args == ["done"]
    qtbot.waitUntil(lambda: w.library_panel.tree.topLevelItemCount() == 1, timeout=10_000)
    top = w.library_panel.tree.topLevelItem(0)
    qtbot.waitUntil(lambda: w.library_panel.tree.topLevelItem(0).text(1) == "4", timeout=10_000)
    top = w.library_panel.tree.topLevelItem(0)
    assert top.text(2) == "1" and top.child(0).text(0) == "broken.mp4"
    assert top.child(0).toolTip(0).strip().endswith(top.child(0).child(0).text(0))

    # 2. type a query: the narrated video comes first, because of what is said in it
    w.focus_search()
    with qtbot.waitSignal(w.search_done, timeout=120_000) as blocker:
        qtbot.keyClicks(w.search_box, "kitchen table")
    first = blocker.args[0].moments[0]
    assert Path(first.path).name == "kitchen_talk.mp4"
    assert "said" in first.reasons and "kitchen" in (first.snippet or "").lower()
    assert first.start >= 3.9

    # 3. the player loads at the moment
    w.grid.setFocus()
    from PySide6.QtCore import Qt
    qtbot.keyClick(w.grid, Qt.Key.Key_Return)
    assert w.player.moment is first
    assert w.player.slider.range_ms == (int(first.start * 1000), int(first.end * 1000))
    if w.player.has_multimedia:
        qtbot.waitUntil(lambda: w.player.player.position() >= int(first.start * 1000) - 50, timeout=20_000)
        assert w.player.player.position() < int(first.end * 1000) + 2000
    qtbot.waitUntil(lambda: len(w.grid.results.thumbs) >= 1, timeout=60_000)

    # 4. the microphone (the real recorder on a fake ALSA input device): what was said is shown
    with fake_microphone(tmp_path, speak("the red cup on the kitchen table")) as mic_name:
        w.search_bar.mic.recorder_factory = lambda: Recorder(device=mic_name, sample_rate=16000,
                                                             max_seconds=30)
        mic = w.search_bar.mic
        # The ALSA file device is not paced in real time: it may fill the 30 s limit at once, and
        # the button then stops and searches by itself; otherwise stop it after 2.5 s of sound.
        with qtbot.waitSignal(w.search_done, timeout=120_000) as blocker:
            mic.start()
            qtbot.waitUntil(lambda: mic.recorder is None or mic.recorder.elapsed >= 2.5, timeout=20_000)
            if mic.recording:
                mic.stop()
    result = blocker.args[0]
    assert "kitchen" in (result.transcript or "").lower()
    assert "kitchen" in w.search_bar.info.text().lower()
    assert Path(result.moments[0].path).name == "kitchen_talk.mp4"

    # 5. cancel in the middle of indexing another folder: the library stays consistent
    def files_done() -> int:
        p = w.index_job.last if w.index_job is not None else None
        return int((p.info or {}).get("files_done", 0)) if p is not None else 0

    with qtbot.waitSignal(w.index_finished, timeout=600_000) as blocker:
        w.handle_dropped([str(more)])
        qtbot.waitUntil(lambda: files_done() >= 1, timeout=300_000)
        w.cancel_indexing()
    assert blocker.args == ["cancelled"]
    qtbot.waitUntil(lambda: w.workers.running == 0, timeout=30_000)
    rows = lib.videos(more)
    done = [r for r in rows if r.status == "done"]
    assert 1 <= len(done) < 6
    assert all(r.n_clips > 0 for r in done)
    assert all(r.status in ("done", "pending") for r in rows)
    # still searchable, and re-indexing finishes the rest
    with qtbot.waitSignal(w.search_done, timeout=120_000):
        w.run_search("text", "kitchen table")
    with qtbot.waitSignal(w.index_finished, timeout=600_000) as blocker:
        w.index_paths([str(more)])
    assert blocker.args == ["done"]
    assert sum(r.status == "done" for r in lib.videos(more)) == 6
