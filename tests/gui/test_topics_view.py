"""The Topics view on a real engine library with planted groups of clips (no models needed):
topics are found in a worker, named, listed with thumbnails; a topic lists its moments, which play."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QImage

from engine.api import Library
from tests.test_topics import WORDS, plant_groups

pytestmark = pytest.mark.gui


@pytest.fixture
def planted(tmp_path):
    lib = Library(tmp_path / "library")
    truth, _ = plant_groups(lib.db, model_id=lib.active_model_id)
    thumb = tmp_path / "thumb.jpg"
    image = QImage(64, 36, QImage.Format.Format_RGB32)
    image.fill(QColor("teal"))
    image.save(str(thumb))
    lib.thumbnail = lambda path, t, width=320: thumb  # the planted videos are not real files
    yield lib, truth
    lib.close()


def test_topics_view_lists_named_topics_and_plays_their_moments(qtbot, planted):
    from app.widgets.topics_view import TopicsView
    from app.workers import Workers

    lib, truth = planted
    workers = Workers()
    view = TopicsView(lambda: lib, workers)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.shown, timeout=60000) as shown:
        view.refresh()
    topic_set = shown.args[0]
    assert view.topic_list.count() == len(topic_set.topics) == 3
    assert "3 topics over 30 clips" in view.status.text()
    view.select_topic(1)
    topic = topic_set.topics[1]
    group = truth[topic.clip_ids[0]]
    assert WORDS[group] in view.topic_list.item(1).text()
    shown_moments = view.grid.results.moments
    assert shown_moments == topic.moments and all(f"group{group}_" in m.path for m in shown_moments)
    qtbot.waitUntil(lambda: all(not view.topic_list.item(i).icon().isNull() for i in range(3)), timeout=10000)
    qtbot.waitUntil(lambda: len(view.grid.results.thumbs) == len(shown_moments), timeout=10000)
    with qtbot.waitSignal(view.play) as played:
        view.grid.activated_moment.emit(shown_moments[0])
    assert played.args[0] is shown_moments[0]
    assert workers.shutdown(30000)


def test_topics_action_in_the_main_window(qtbot, make_window, planted):
    lib, _ = planted
    w = make_window(lib, load_models=False)
    with qtbot.waitSignal(w.topics_view.shown, timeout=60000):
        w.topics_action.trigger()
    assert w.results_stack.currentWidget() is w.topics_view
    assert w.topics_view.topic_list.count() == 3
    w.topics_view.grid.setFocus()
    cued = []
    w.player.play_moment = lambda m, autoplay: cued.append((m, autoplay))
    w.topics_view.select_topic(2)
    assert cued and cued[-1][1] is False  # selecting a topic cues its first moment
    w.topics_view.grid.activated_moment.emit(w.topics_view.grid.results.moments[0])
    assert cued[-1] == (w.topics_view.grid.results.moments[0], True)
