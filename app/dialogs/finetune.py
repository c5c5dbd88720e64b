"""Fine-tune the model on the library: time budget, device, live loss, before/after, roll back.

Built on ``lib.train(minutes=..., token=...)`` (a generator of Progress with ``info["loss"]``),
``lib.list_models()`` and ``lib.use_model(id)``. The training engineer owns those; this dialog reads
them defensively (dicts or objects) so small shape changes do not break it.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.format import eta
from app.widgets.loss_plot import LossPlot
from app.workers import JobWorker, Workers
from engine.contract import LibraryContract
from engine.jobs import Progress

# Readable names of the figures a training run measures on its held-out videos.
FIGURE_LABELS = {
    "sound_to_picture": "sound → picture",
    "sound_to_sound": "sound → similar sound",
    "narration_to_picture": "narration → picture",
}
DEVICES = (("auto", "Automatic"), ("cpu", "CPU"), ("cuda", "GPU (CUDA)"), ("mps", "GPU (Apple)"))


def field(obj: Any, name: str, default: Any = None) -> Any:
    """Read ``name`` from a dict or an object (list_models() may return either)."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def figures_text(info: dict[str, Any]) -> str:
    """The held-out before/after figures of a run (from the final Progress info or a model record)
    as HTML: only videos the run never trained on are measured, so only those are shown; a
    library too small to hold videos out gets its plain note instead of numbers."""
    metrics = info.get("metrics") if isinstance(info.get("metrics"), dict) else info
    held = metrics.get("held_out") if isinstance(metrics, dict) else None
    if not isinstance(held, dict) or not held:
        return ""
    if not held.get("judged"):
        return f"<i>Held-out check: {held.get('note', 'not done')}</i>"
    before, after = held.get("before") or {}, held.get("after") or {}
    rows = []
    for key, name in FIGURE_LABELS.items():
        for k in ("R@1", "R@5"):
            b, a = (before.get(key) or {}).get(k), (after.get(key) or {}).get(k)
            if a or b:
                rand = (a or b).get("random")
                rows.append(f"<tr><td>{name} {k}</td><td align=right>{_est(b)}</td>"
                            f"<td align=right>{_est(a)}</td><td align=right>{_num(rand)}</td></tr>")
    if not rows:
        return ""
    head = (f"On {len(held.get('videos', []))} held-out videos, never trained on "
            f"(95% intervals):")
    return (f"{head}<table cellspacing=6><tr><th></th><th>before</th><th>after</th><th>random</th></tr>"
            + "".join(rows) + "</table>")


def _est(e: Any) -> str:
    if not isinstance(e, dict):
        return "–"
    return f"{e['value']:.2f} [{e['low']:.2f}–{e['high']:.2f}]"


def _num(v: Any) -> str:
    return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


class FinetuneDialog(QDialog):
    model_changed = Signal(str)

    def __init__(self, lib: LibraryContract, workers: Workers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lib = lib
        self.workers = workers
        self.job: JobWorker | None = None
        self.previous_model: str | None = None
        self.setWindowTitle("Fine-tune on your library")
        self.setMinimumWidth(560)
        lay = QVBoxLayout(self)
        intro = QLabel("Fine-tuning adapts the search model to your own videos using what it already "
                       "extracted. Only the sound of up to five minutes of your videos is read again, "
                       "to add noise floors (so that a recording from a microphone still finds its "
                       "pictures); no picture is decoded again, unless you also fine-tune the picture "
                       "layers below. A fifth of your videos is held out: never trained on, it shows "
                       "whether the new model really finds things better. Your current model is kept: "
                       "you can switch back.")
        self.deep = QCheckBox("Also fine-tune the last picture layers (decodes every video once more; "
                              "best with a GPU)")
        intro.setWordWrap(True)
        lay.addWidget(intro)
        form = QFormLayout()
        self.minutes = QSpinBox()
        self.minutes.setRange(1, 600)
        self.minutes.setValue(10)
        self.minutes.setSuffix(" min")
        form.addRow("Time budget", self.minutes)
        self.device = QComboBox()
        for key, label in DEVICES:
            self.device.addItem(label, key)
        form.addRow("Device", self.device)
        from engine.train.cli import OBJECTIVE_NAMES  # torch-free list; docs/objectives.md compares them

        self.objective = QComboBox()
        for name in OBJECTIVE_NAMES:
            self.objective.addItem(name + (" (default)" if name == "mmv" else ""), name)
        self.objective.setToolTip("Self-supervised objective; see docs/objectives.md for which to pick")
        form.addRow("Objective", self.objective)
        form.addRow("", self.deep)
        lay.addLayout(form)
        row = QHBoxLayout()
        self.start_btn = QPushButton("Start training")
        self.start_btn.clicked.connect(self.start)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        row.addWidget(self.start_btn)
        row.addWidget(self.cancel_btn)
        row.addStretch(1)
        lay.addLayout(row)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.status = QLabel("Not started.")
        self.note = QLabel()
        self.note.setWordWrap(True)
        lay.addWidget(self.bar)
        lay.addWidget(self.status)
        lay.addWidget(self.note)
        self.plot = LossPlot()
        lay.addWidget(self.plot, 1)
        self.figures = QLabel()
        self.figures.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self.figures)
        lay.addWidget(QLabel("<b>Models</b> (the active one is in bold)"))
        self.models = QListWidget()
        self.models.setMaximumHeight(120)
        lay.addWidget(self.models)
        mrow = QHBoxLayout()
        self.use_btn = QPushButton("Use selected model")
        self.use_btn.clicked.connect(self.use_selected)
        self.back_btn = QPushButton("Switch back to previous")
        self.back_btn.setEnabled(False)
        self.back_btn.clicked.connect(self.switch_back)
        mrow.addWidget(self.use_btn)
        mrow.addWidget(self.back_btn)
        mrow.addStretch(1)
        lay.addLayout(mrow)
        self.refresh_models()

    # ---- models --------------------------------------------------------------------------
    def refresh_models(self) -> None:
        self.workers.call(self.lib.list_models, on_result=self._show_models)

    def _show_models(self, models: list[Any]) -> None:
        self.models.clear()
        active = self.lib.active_model_id
        for m in models:
            mid = field(m, "id") or field(m, "model_id") or str(m)
            label = mid
            name, created = field(m, "name"), field(m, "created_at")
            if name and name != mid:
                label += f" – {name}"
            elif isinstance(created, int | float):   # epoch seconds
                label += time.strftime(" (%Y-%m-%d %H:%M)", time.localtime(created))
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, mid)
            if field(m, "active") or mid == active:
                f = item.font()
                f.setBold(True)
                item.setFont(f)
            self.models.addItem(item)
            if field(m, "active") or mid == active:
                figs = figures_text(field(m, "info") or {})
                if figs and self.job is None:
                    self.figures.setText(f"<b>{mid}</b> on this library:" + figs)

    def use_selected(self) -> None:
        item = self.models.currentItem()
        if item is not None:
            self.use_model(item.data(Qt.ItemDataRole.UserRole))

    def use_model(self, model_id: str) -> None:
        current = self.lib.active_model_id
        if current and current != model_id:
            self.previous_model = current
            self.back_btn.setEnabled(True)
        self.status.setText(f"Switching to {model_id}…")
        self.workers.call(self.lib.use_model, model_id, on_result=lambda _r, m=model_id: self._switched(m),
                          on_error=lambda exc, tb: self.status.setText(f"Could not switch: {exc}"))

    def _switched(self, model_id: str) -> None:
        self.status.setText(f"Now searching with {model_id}.")
        self.model_changed.emit(model_id)
        self.refresh_models()

    def switch_back(self) -> None:
        if self.previous_model:
            self.use_model(self.previous_model)

    # ---- training ------------------------------------------------------------------------
    def start(self) -> None:
        if self.job is not None:
            return
        self.previous_model = self.lib.active_model_id
        self.plot.clear()
        self.figures.setText("")
        self.note.setText("")
        # The contract's train() takes these options (engine.contract.LibraryContract.train).
        kwargs: dict[str, Any] = {"minutes": float(self.minutes.value()), "device": self.device.currentData()}
        if self.deep.isChecked():
            kwargs["deep"] = True
        if self.objective.currentData() != "mmv":
            kwargs["objective"] = self.objective.currentData()
        job = JobWorker(lambda token: self.lib.train(token=token, **kwargs))
        job.signals.progress.connect(self._on_progress)
        job.signals.error.connect(lambda exc, tb: self.status.setText(f"Training failed: {exc}"))
        job.signals.cancelled.connect(
            lambda: self.status.setText("Cancelled. The previous model stays active."))
        job.signals.result.connect(lambda _r: self._trained())
        job.signals.finished.connect(self._finished)
        self.job = job
        self.start_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.status.setText("Starting…")
        self.workers.start(job)

    def _on_progress(self, p: Progress) -> None:
        self.bar.setValue(int(p.fraction * 1000))
        info = p.info or {}
        step = info.get("step", p.done)
        if "loss" in info:
            self.plot.add(step, info["loss"], "loss")
        if "val_loss" in info:   # measured on the held-out videos at the end of each epoch
            self.plot.add(step, info["val_loss"], "held-out loss")
        parts = [p.stage.capitalize()]
        if isinstance(info.get("held_out"), dict) or info.get("stopped_early"):
            self.note.setText(p.message)   # the split (or why there is none); an early stop
        if isinstance(info.get("loss"), int | float):
            parts += [f"step {int(step)}", f"loss {info['loss']:.3f}"]
        elif p.message:
            parts.append(p.message)
        if p.total and p.stage == "train":
            parts.append(eta(p.eta_s))
        self.status.setText(" · ".join(parts))
        figs = figures_text(info)
        if figs:
            self.figures.setText(figs)

    def _trained(self) -> None:
        new = self.lib.active_model_id
        self.status.setText(f"Done. Now searching with {new}." if new else "Done.")
        if self.previous_model and new and new != self.previous_model:
            self.back_btn.setEnabled(True)
            self.back_btn.setText(f"Switch back to {self.previous_model}")
        if new:
            self.model_changed.emit(new)
        self.refresh_models()

    def _finished(self) -> None:
        self.job = None
        self.start_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)

    def cancel(self) -> None:
        if self.job is not None:
            self.status.setText("Stopping…")
            self.job.cancel()

    def stop(self) -> None:
        self.cancel()
