"""The main window: library on the left, results in the middle, the player on the right.

Everything slow goes through :class:`app.workers.Workers`; this class only wires signals, keeps
the small amount of UI state (search sequence numbers, the index queue) and draws.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QKeySequence,
    QPixmap,
    QShortcut,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QSplitter,
    QStackedWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app import desktop
from app.folder_watcher import FolderWatcher
from app.icons import APP_ICON, icon
from app.indexing import IndexQueue
from app.notifications import Notifier
from app.searching import SearchRunner, describe_query
from app.widgets.library_panel import LibraryPanel, LibrarySnapshot, take_snapshot
from app.widgets.player import PlayerPanel
from app.widgets.results_grid import ResultsGrid
from app.widgets.search_bar import SearchBar, query_kind_of
from app.widgets.topics_view import TopicsView
from app.workers import JobWorker, Workers
from engine.contract import LibraryContract, LoadedModel
from engine.search.moments import Moment, SearchResult

log = logging.getLogger(__name__)
ICON_PATH = APP_ICON
DEBOUNCE_MS = 250


class MainWindow(QMainWindow):
    models_ready = Signal()
    search_done = Signal(object)        # SearchResult shown (tests and the bench wait on it)
    index_finished = Signal(str)        # 'done' | 'cancelled' | 'paused' | 'error'

    def __init__(self, lib: LibraryContract, *, workers: Workers | None = None,
                 recorder_factory: Callable[[], Any] | None = None, multimedia: bool = True,
                 qsettings: QSettings | None = None, load_models: bool = True) -> None:
        super().__init__()
        self.lib = lib
        self.workers = workers or Workers(parent=self)
        self.qsettings = qsettings or QSettings("mmvsearch", "mmvsearch")
        self.models_state = "idle"          # idle | loading | ready | failed
        self.finetune_dialog = None
        self.topics_mode = False            # the Topics view replaces the results until the next search
        self.indexer = IndexQueue(self.workers, lambda: self.lib, self)
        self.searches = SearchRunner(self.workers, lambda: self.lib, self)

        self.setWindowTitle("mmvsearch")
        if ICON_PATH.exists():
            self.setWindowIcon(QIcon(str(ICON_PATH)))
        self.setAcceptDrops(True)
        self.resize(1280, 780)
        self._build(recorder_factory, multimedia)
        self._restore_state()
        self.watcher = FolderWatcher(parent=self)
        self.watcher.changed.connect(self._on_folder_changed)
        self.apply_watch_setting()
        self.refresh_library()
        self._load_models_on_show = load_models

    # ---- layout --------------------------------------------------------------------------
    def _build(self, recorder_factory: Callable[[], Any] | None, multimedia: bool) -> None:
        central = QWidget()
        v = QVBoxLayout(central)
        v.setContentsMargins(8, 8, 8, 4)
        self.search_bar = SearchBar(recorder_factory)
        self.search_box = self.search_bar.box
        v.addWidget(self.search_bar)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.library_panel = LibraryPanel()
        self.results_stack = QStackedWidget()
        self.message = QLabel()
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.RichText)
        self.message.setStyleSheet("color: palette(placeholder-text); font-size: 15px; padding: 30px;")
        self.grid = ResultsGrid()
        self.results_stack.addWidget(self.message)
        self.results_stack.addWidget(self.grid)
        self.topics_view = TopicsView(lambda: self.lib, self.workers)
        self.results_stack.addWidget(self.topics_view)
        self.player = PlayerPanel(multimedia=multimedia)
        self.splitter.addWidget(self.library_panel)
        self.splitter.addWidget(self.results_stack)
        self.splitter.addWidget(self.player)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setSizes([290, 560, 430])
        v.addWidget(self.splitter, 1)
        self.setCentralWidget(central)
        self.notifier = Notifier(central)

        tb = QToolBar("Main")
        tb.setObjectName("main_toolbar")
        tb.setMovable(False)
        self.add_action = QAction("Add folder…", self, shortcut=QKeySequence("Ctrl+O"),
                                  triggered=self.choose_folder)
        self.settings_action = QAction("Settings…", self, shortcut=QKeySequence("Ctrl+,"),
                                       triggered=self.open_settings)
        self.topics_action = QAction("Topics", self, shortcut=QKeySequence("Ctrl+T"), triggered=self.show_topics)
        self.topics_action.setToolTip("Browse the library by the topics it holds")
        self.finetune_action = QAction("Fine-tune…", self, triggered=self.open_finetune)
        self.about_action = QAction("About", self, triggered=self.open_about)
        self.finetune_action.setToolTip("Adapt the model to your library")
        for a, name in ((self.add_action, "folder-add"), (self.settings_action, "settings"),
                        (self.finetune_action, "finetune")):
            a.setIcon(icon(name))
            tb.addAction(a)
        tb.addAction(self.about_action)
        tb.addAction(self.topics_action)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)

        self.model_label = QLabel()
        self.model_busy = QProgressBar()
        self.model_busy.setRange(0, 0)
        self.model_busy.setMaximumWidth(90)
        self.model_busy.setMaximumHeight(12)
        self.model_busy.setVisible(False)
        self.statusBar().addPermanentWidget(self.model_busy)
        self.statusBar().addPermanentWidget(self.model_label)

        # wiring
        self.debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self.debounce.timeout.connect(self.search_now)
        self.search_box.textChanged.connect(self._on_text_changed)
        self.search_box.returnPressed.connect(self._on_return)
        self.search_box.down_pressed.connect(self._focus_results)
        self.search_box.file_dropped.connect(self.search_file)
        self.search_bar.open_query_file.connect(self.choose_query_file)
        self.search_bar.mic.recorded.connect(lambda wave: self.run_search("mic", wave))
        self.search_bar.mic.failed.connect(lambda exc: self.notifier.error("Microphone unavailable", exc))
        self.grid.current_moment.connect(self._on_current_moment)
        self.grid.activated_moment.connect(self.play)
        self.topics_view.play.connect(self.play)
        self.topics_view.cue.connect(self._on_current_moment)
        for source in (self.player, self.grid):
            source.more_like_this.connect(self.more_like_this)
            source.open_external.connect(self.open_external)
            source.reveal.connect(self.reveal)
        lp = self.library_panel
        lp.add_folder.connect(self.choose_folder)
        lp.rescan.connect(lambda folder: self.index_paths([folder]))
        lp.retry.connect(lambda folder: (self.lib.reset_errors(folder), self.index_paths([folder])))
        lp.remove.connect(self.remove_folder)
        self.searches.results.connect(self._on_results)
        self.searches.failed.connect(self._on_search_error)
        self.searches.thumbnail.connect(
            lambda row, img: self.grid.results.set_thumbnail(row, QPixmap.fromImage(img)))
        ix = self.indexer
        ix.started.connect(self._index_started)
        ix.progress.connect(lp.job_progress)
        ix.snapshot.connect(self._on_snapshot)
        ix.failed.connect(lambda exc, tb: self.notifier.error("Indexing stopped", exc, tb))
        ix.finished.connect(self._index_done)
        lp.pause.connect(self.pause_indexing)
        lp.resume.connect(self.resume_indexing)
        lp.cancel.connect(self.cancel_indexing)

        for seq in ("Ctrl+F", "/"):
            QShortcut(QKeySequence(seq), self, activated=self.focus_search)
        QShortcut(QKeySequence("Ctrl+M"), self, activated=self.search_bar.mic.toggle)
        # widget-scoped: Escape clears the box only while typing in it; Space plays/pauses from the grid
        QShortcut(QKeySequence("Escape"), self.search_box, activated=self.search_box.clear,
                  context=Qt.ShortcutContext.WidgetShortcut)
        QShortcut(QKeySequence("Space"), self.grid, activated=self.player.toggle,
                  context=Qt.ShortcutContext.WidgetShortcut)
        self._update_message()

    def focus_search(self) -> None:
        self.search_box.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_box.selectAll()

    def _focus_results(self) -> None:
        if self.grid.results.rowCount():
            self.results_stack.setCurrentWidget(self.grid)
            self.grid.setFocus()

    # ---- persistence ---------------------------------------------------------------------
    def _restore_state(self) -> None:
        geo = self.qsettings.value("window/geometry")
        if isinstance(geo, QByteArray | bytes):
            self.restoreGeometry(geo)
        st = self.qsettings.value("window/state")
        if isinstance(st, QByteArray | bytes):
            self.restoreState(st)
        sp = self.qsettings.value("window/splitter")
        if isinstance(sp, QByteArray | bytes):
            self.splitter.restoreState(sp)

    def _save_state(self) -> None:
        self.qsettings.setValue("window/geometry", self.saveGeometry())
        self.qsettings.setValue("window/state", self.saveState())
        self.qsettings.setValue("window/splitter", self.splitter.saveState())
        self.qsettings.setValue("library/last", str(self.lib.paths.root))
        self.qsettings.sync()

    # ---- models --------------------------------------------------------------------------
    def load_models(self) -> None:
        if self.models_state in ("loading", "ready"):
            return
        self.models_state = "loading"
        self._show_model_state()
        self.workers.call(self.lib.load_models, on_result=self._models_loaded, on_error=self._models_failed)

    def _models_loaded(self, model: LoadedModel) -> None:
        self.models_state = "ready"
        self._show_model_state(model)
        self.models_ready.emit()
        if self.searches.pending:
            self._update_message()

    def _models_failed(self, exc: BaseException, tb: str) -> None:
        self.models_state = "failed"
        self._show_model_state()
        self.notifier.error("The models could not be loaded", exc, tb)

    def _show_model_state(self, model: LoadedModel | None = None) -> None:
        self.model_busy.setVisible(self.models_state == "loading")
        if self.models_state == "loading":
            self.model_label.setText("Loading models…")
        elif self.models_state == "ready":
            model_id = model.model_id if model is not None else self.lib.active_model_id
            note = model.device_note if model is not None else ""
            self.model_label.setText(f"Model {model_id} · {note}")
        elif self.models_state == "failed":
            self.model_label.setText("Models failed to load (see notification)")
        else:
            self.model_label.setText("")
        self._update_message()

    # ---- library -------------------------------------------------------------------------
    def refresh_library(self) -> None:
        """Re-read folders and errors in a worker (the indexer refreshes from its own thread)."""
        if self.index_job is not None:
            return  # the running job sends snapshots itself; one database user at a time
        self.workers.call(take_snapshot, self.lib, on_result=self._on_snapshot,
                          on_error=lambda exc, tb: self.notifier.error("Could not read the library", exc, tb))

    def _on_snapshot(self, snap: LibrarySnapshot | None) -> None:
        if snap is None:
            return
        self.library_panel.set_snapshot(snap)
        self.statusBar().showMessage(f"{snap.n_done} videos searchable" if snap.n_videos
                                     else "Library is empty")
        self._update_message()

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of videos")
        if folder:
            self.index_paths([folder])

    @property
    def index_job(self) -> JobWorker | None:
        return self.indexer.job

    @property
    def index_queue(self) -> list[list[str]]:
        return self.indexer.queue

    def index_paths(self, paths: list[str]) -> None:
        """Index files/folders; queued when a job is already writing (the database has one writer)."""
        paths = [str(Path(p).expanduser().resolve()) for p in paths]
        if not paths:
            return
        watched = self.lib.settings.watch_folders
        if watched:   # watching is on: folders added from now on are watched too
            new = [p for p in paths if Path(p).is_dir() and p not in watched]
            if new:
                watched.extend(new)
                self.lib.save_settings()
                self.apply_watch_setting()
        if not self.indexer.index(paths):
            self.notifier.info("Queued", f"{len(paths)} item(s) will be indexed after the current job.")

    def _index_started(self, label: str) -> None:
        self._errors_before = sum(len(v) for v in self.library_panel.snapshot.errors.values())
        self.library_panel.job_started(label)

    def _index_done(self, state: str) -> None:
        if state == "paused":
            self.library_panel.job_paused()
        else:
            self.library_panel.job_finished()
            if state == "cancelled":
                self.notifier.info("Indexing cancelled", "Files indexed so far stay searchable.")
        # the job's own thread took the final snapshot (delivered just before "finished"): reading
        # here in another worker could overlap the next queued job's writes
        self._after_index_snapshot(self.library_panel.snapshot, state)
        self.index_finished.emit(state)

    def _after_index_snapshot(self, snap: LibrarySnapshot, state: str) -> None:
        errors = [v for vs in snap.errors.values() for v in vs]
        if len(errors) > getattr(self, "_errors_before", 0):
            details = "\n".join(f"{v.path}: {v.error}" for v in errors)
            self.notifier.notify("warning", f"{len(errors)} file(s) could not be indexed",
                                 "They are listed in red in the library panel.", details)
        elif state == "done":
            self.notifier.info("Indexing finished", f"{snap.n_done} videos are searchable.")

    # ---- watching ------------------------------------------------------------------------
    def apply_watch_setting(self) -> None:
        self.watcher.watch(list(self.lib.settings.watch_folders))

    def _on_folder_changed(self, root: str) -> None:
        """New or changed files in a watched folder: index it again (unchanged files are skipped)."""
        if not self.indexer.covers([root]):
            self.index_paths([root])

    def pause_indexing(self) -> None:
        if self.indexer.busy:
            self.library_panel.job_stopping()
            self.indexer.pause()

    def resume_indexing(self) -> None:
        if not self.indexer.resume():
            self.library_panel.job_finished()

    def cancel_indexing(self) -> None:
        if self.indexer.busy:
            self.library_panel.job_stopping()
        else:  # cancelling a paused job: forget it
            self.library_panel.job_finished()
        self.indexer.cancel()

    def remove_folder(self, folder: str) -> None:
        if self.index_job is not None:
            self.notifier.info("Busy", "Wait for indexing to finish (or cancel it) before removing a folder.")
            return
        if self.player.moment is not None and self.player.moment.path.startswith(folder.rstrip("/") + "/"):
            self.player.stop()

        def removed(n: int) -> None:
            self.notifier.info("Removed", f"{n} video(s) from {folder} are no longer in the library.")
            self.refresh_library()
            if self.last_query is not None:
                self.run_search(*self.last_query)
        self.workers.call(
            self.lib.remove, folder, on_result=removed,
            on_error=lambda exc, tb: self.notifier.error("Could not remove the folder", exc, tb))

    # ---- drops ---------------------------------------------------------------------------
    def dragEnterEvent(self, e: QDragEnterEvent) -> None:
        if e.mimeData().hasUrls() and any(u.isLocalFile() for u in e.mimeData().urls()):
            e.acceptProposedAction()

    def dropEvent(self, e: QDropEvent) -> None:
        files = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        e.acceptProposedAction()
        self.handle_dropped(files)

    def handle_dropped(self, files: list[str]) -> None:
        """A single sound/picture is a query; anything else (folders, videos) is added to the library."""
        if len(files) == 1 and not Path(files[0]).is_dir() and (kind := query_kind_of(files[0])):
            self.search_file(files[0], kind)
            return
        self.index_paths(files)

    # ---- search --------------------------------------------------------------------------
    def _on_text_changed(self, text: str) -> None:
        self.debounce.start()  # restart: search ~250 ms after the last key

    def _on_return(self) -> None:
        if self.debounce.isActive() or self.last_query != ("text", self.search_box.text().strip()):
            self.debounce.stop()
            self.search_now()
        else:
            self._focus_results()
            m = self.grid.selected_moment()
            if m is not None:
                self.play(m)

    # the search state lives in SearchRunner; these read it (tests, bench, screenshots use them)
    @property
    def search_seq(self) -> int:
        return self.searches.seq

    @property
    def shown_seq(self) -> int:
        return self.searches.shown_seq

    @property
    def last_query(self) -> tuple[str, Any] | None:
        return self.searches.last_query

    @property
    def last_result(self) -> SearchResult | None:
        return self.searches.last_result

    def search_now(self) -> None:
        text = self.search_box.text().strip()
        if not text:
            self.searches.clear()
            self.grid.set_moments([])
            self.search_bar.set_info("")
            self._update_message()
            return
        self.run_search("text", text)

    def search_file(self, path: str, kind: str) -> None:
        self.search_box.blockSignals(True)
        self.search_box.clear()
        self.search_box.blockSignals(False)
        self.run_search(kind, path)

    def choose_query_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Search with a sound or a picture", "",
            "Sounds and pictures (*.wav *.mp3 *.flac *.ogg *.m4a *.opus *.jpg *.jpeg *.png *.bmp *.webp)")
        if path and (kind := query_kind_of(path)):
            self.search_file(path, kind)

    def more_like_this(self, m: Moment) -> None:
        self.search_box.blockSignals(True)
        self.search_box.clear()
        self.search_box.blockSignals(False)
        self.run_search("like", m)

    def run_search(self, kind: str, query: Any) -> int:
        """Start a search in a worker; only the newest one's results are ever shown."""
        self.topics_mode = False
        seq = self.searches.run(kind, query)
        waiting = " · waiting for the models to load…" if self.models_state == "loading" else " · searching…"
        self.search_bar.set_info(describe_query(kind, query) + waiting)
        return seq

    def _on_search_error(self, exc: BaseException, tb: str) -> None:
        self.search_bar.set_info("")
        self.notifier.error("Search failed", exc, tb)
        self._update_message()

    def _on_results(self, result: SearchResult, took: float) -> None:
        kind, query = self.last_query or ("text", "")
        info = describe_query(kind, query)
        if result.transcript:
            info = f"You said: <b>“{html.escape(result.transcript)}”</b>"
        self.search_bar.set_info(f"{info} · {len(result.moments)} moments in {took:.2f} s")
        self.grid.set_moments(result.moments)
        self._update_message()
        self.search_done.emit(result)

    def _update_message(self) -> None:
        """The empty states: say what to do next rather than showing a blank grid."""
        if self.topics_mode:
            return
        snap = self.library_panel.snapshot
        if self.grid.results.rowCount():
            self.results_stack.setCurrentWidget(self.grid)
            return
        if not snap.folders and self.index_job is None:
            text = ("<h2>Your video library is empty</h2>"
                    "<p>Drop folders of videos anywhere on this window, or use <b>Add folder…</b>.</p>"
                    "<p>Then describe a moment in words, record a sound with the microphone button, "
                    "or drop a picture or a sound on the search box.</p>")
        elif self.searches.last_error is not None and not self.searches.pending:
            text = ("<h3>The search did not work</h3><p>The notification in the corner says why; "
                    "“Details” has the full report.</p>")
        elif self.last_query is not None and not self.searches.pending:
            text = ("<h3>No moments matched</h3><p>Try other words, or describe what can be seen or heard "
                    "(“a dog barking”, “waves on a beach”).</p>")
        elif self.last_query is not None:
            text = "<h3>Searching…</h3>" + ("<p>The models are still loading; your search runs as soon as "
                                            "they are ready.</p>" if self.models_state == "loading" else "")
        else:
            text = ("<h2>What are you looking for?</h2><p>Type a description (Ctrl+F or /), press the "
                    "microphone (Ctrl+M) to say it or make the sound, or drop a picture or a sound file "
                    "on the search box.</p>"
                    "<p>Arrow keys move between results, Enter plays.</p>")
            if self.models_state == "loading":
                text += "<p><i>Loading models… you can already type.</i></p>"
        self.message.setText(text)
        self.results_stack.setCurrentWidget(self.message)

    def show_topics(self) -> None:
        """Show the Topics view in place of the results (a new search brings the results back)."""
        self.topics_mode = True
        self.results_stack.setCurrentWidget(self.topics_view)
        self.topics_view.ensure_computed()

    # ---- player --------------------------------------------------------------------------
    def _on_current_moment(self, m: Moment | None) -> None:
        if m is not None:
            self.player.play_moment(m, autoplay=False)   # cue it up; Enter / double-click plays

    def play(self, m: Moment) -> None:
        self.player.play_moment(m, autoplay=True)

    def open_external(self, m: Moment) -> None:
        if self.player.is_playing():
            self.player.toggle()   # one sound at a time
        if not desktop.open_in_system_player(m.path):
            self.notifier.error("Could not open the video", f"No application opens {m.path}")

    def reveal(self, m: Moment) -> None:
        if not desktop.reveal_in_file_manager(m.path):
            self.notifier.error("Could not show the file", f"No file manager opens {Path(m.path).parent}")

    # ---- dialogs -------------------------------------------------------------------------
    def open_settings(self) -> None:
        from app.dialogs.settings import SettingsDialog

        dlg = SettingsDialog(self.lib, self.workers, self,
                             folders=[f.path for f in self.library_panel.snapshot.folders])
        if dlg.exec():
            try:
                dlg.apply()
            except Exception as exc:
                self.notifier.error("Settings were not saved", exc)
                return
            self.notifier.info("Settings saved", dlg.summary())
            self.apply_watch_setting()
            if dlg.library_changed():
                self.switch_library(dlg.library_dir())

    def switch_library(self, root: str) -> None:
        if self.index_job is not None:
            self.notifier.info("Busy", "Finish or cancel indexing before switching libraries.")
            return
        from engine.api import Library

        try:
            new = Library(root)
        except Exception as exc:
            self.notifier.error("Could not open the library", exc)
            return
        self.player.stop()
        old, self.lib = self.lib, new
        self.grid.set_moments([])
        self.topics_view.reset()
        self.searches.clear()
        self.qsettings.setValue("library/last", str(new.paths.root))
        self.workers.wait(10000)  # nothing may still use the old library's connection
        old.close()
        if self.finetune_dialog is not None:   # it holds the old library
            self.finetune_dialog.close()
            self.finetune_dialog = None
        was, self.models_state = self.models_state, "idle"
        self.library_panel.set_snapshot(LibrarySnapshot())
        self.apply_watch_setting()
        self.refresh_library()
        self._update_message()
        if was != "idle":
            self.load_models()

    def open_about(self) -> None:
        from app.dialogs.about import show_about

        show_about(self)

    def open_finetune(self) -> None:
        from app.dialogs.finetune import FinetuneDialog

        if self.finetune_dialog is None:
            self.finetune_dialog = FinetuneDialog(self.lib, self.workers, self)
            self.finetune_dialog.model_changed.connect(self._on_model_changed)
        self.finetune_dialog.show()
        self.finetune_dialog.raise_()

    def _on_model_changed(self, model_id: str) -> None:
        self.model_label.setText(f"Model {model_id}")
        self.topics_view.reset()
        if self.last_query is not None:
            self.run_search(*self.last_query)

    def showEvent(self, e: QShowEvent) -> None:
        super().showEvent(e)
        if self._load_models_on_show:
            self._load_models_on_show = False
            # Importing torch in a worker still takes the GIL for a second or two: start only once
            # the window has had time to paint, so it is on screen before torch is even imported.
            QTimer.singleShot(150, self.load_models)

    # ---- shutdown ------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop timers, recording, playback and every worker; wait for the threads to end."""
        self.debounce.stop()
        self.watcher.stop()
        self.search_bar.mic.cancel()
        self.player.stop()
        self.notifier.clear()
        if self.finetune_dialog is not None:
            self.finetune_dialog.stop()
        self.workers.shutdown()

    def closeEvent(self, e: QCloseEvent) -> None:
        self._save_state()
        self.shutdown()
        super().closeEvent(e)
