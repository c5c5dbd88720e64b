"""Settings: device, library location, clip length, speech recognition, excluded patterns.

Values go to ``lib.settings`` (engine.library.Settings) and ``lib.save_settings()``; the library
location is the app's own choice (QSettings), since a library cannot store where it lives.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.workers import Workers
from engine.contract import LibraryContract

DEVICE_LABELS = {"auto": "Automatic (best available)", "cpu": "CPU", "cuda": "GPU (CUDA)",
                 "mps": "GPU (Apple)"}


def detect_devices() -> list[str]:
    """engine.device imports torch: only ever called in a worker thread."""
    from engine.device import detect_devices as detect

    return detect()


class SettingsDialog(QDialog):
    def __init__(self, lib: LibraryContract, workers: Workers, parent: QWidget | None = None,
                 folders: list[str] | None = None) -> None:
        super().__init__(parent)
        self.lib = lib
        self.folders = folders or []   # the library's folders, for "watch" (no database read here)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(520)
        s = lib.settings
        form = QFormLayout()
        self.device = QComboBox()
        for key in ("auto", "cpu", "cuda", "mps"):
            self.device.addItem(DEVICE_LABELS[key], key)
        self.device.setCurrentIndex(max(0, self.device.findData(s.device)))
        self.detected = QLabel("Detecting devices…")
        self.detected.setStyleSheet("color: palette(placeholder-text);")
        dev_box = QVBoxLayout()
        dev_box.addWidget(self.device)
        dev_box.addWidget(self.detected)
        form.addRow("Compute device", dev_box)

        self.library = QLineEdit(str(lib.paths.root))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        lib_row = QHBoxLayout()
        lib_row.addWidget(self.library, 1)
        lib_row.addWidget(browse)
        form.addRow("Library location", lib_row)

        self.clip = QDoubleSpinBox()
        self.clip.setRange(1.0, 30.0)
        self.clip.setSingleStep(0.5)
        self.clip.setSuffix(" s")
        self.clip.setValue(float(s.clip_seconds))
        self.clip.setToolTip("Length of the windows a video is cut into. Shorter finds shorter moments "
                             "but indexes slower. Applies to videos indexed from now on.")
        form.addRow("Clip length", self.clip)

        self.transcribe = QCheckBox("Recognise speech in videos (find what is said)")
        self.transcribe.setChecked(bool(s.transcribe))
        form.addRow("Speech", self.transcribe)

        self.read_text = QCheckBox("Read text on screen: titles, signs, scores (slower indexing)")
        self.read_text.setChecked(bool(getattr(s, "read_text", False)))
        self.read_text.setToolTip("OCR of sampled frames after indexing. Turning it on reads the videos "
                                  "already in the library too, without indexing them again.")
        form.addRow("On-screen text", self.read_text)

        self.watch = QCheckBox("Watch the library's folders and index new videos automatically")
        self.watch.setChecked(bool(s.watch_folders))
        form.addRow("Folders", self.watch)

        self.excluded = QPlainTextEdit("\n".join(s.excluded_patterns))
        self.excluded.setPlaceholderText("one pattern per line, e.g. */.cache/*")
        self.excluded.setMaximumHeight(100)
        form.addRow("Skip files matching", self.excluded)

        lay = QVBoxLayout(self)
        lay.addLayout(form)
        note = QLabel("Device changes apply the next time the models load (restart the app).")
        note.setStyleSheet("color: palette(placeholder-text);")
        lay.addWidget(note)
        std = QDialogButtonBox.StandardButton
        buttons = QDialogButtonBox(std.Save | std.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self._worker = workers.call(
            detect_devices, on_result=self._on_devices,
            on_error=lambda exc, tb: self.detected.setText(f"Detection failed: {exc}"))

    def _on_devices(self, found: list[str]) -> None:
        names = [DEVICE_LABELS.get(d, d) for d in found]
        self.detected.setText("Found on this machine: " + ", ".join(names))
        for i in range(self.device.count()):
            key = self.device.itemData(i)
            if key not in ("auto", *found):
                self.device.setItemText(i, f"{DEVICE_LABELS[key]} – not found")

    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Library location", self.library.text())
        if d:
            self.library.setText(d)

    def library_dir(self) -> str:
        return str(Path(self.library.text().strip()).expanduser())

    def library_changed(self) -> bool:
        return Path(self.library_dir()).resolve() != Path(self.lib.paths.root).resolve()

    def apply(self) -> None:
        s = self.lib.settings
        s.device = self.device.currentData()
        s.clip_seconds = float(self.clip.value())
        s.transcribe = self.transcribe.isChecked()
        s.read_text = self.read_text.isChecked()
        s.excluded_patterns = [ln.strip() for ln in self.excluded.toPlainText().splitlines() if ln.strip()]
        if not self.watch.isChecked():
            s.watch_folders = []
        elif not s.watch_folders:
            s.watch_folders = [f for f in self.folders if Path(f).is_dir()]
        self.lib.save_settings()

    def summary(self) -> str:
        s = self.lib.settings
        return (f"Device {s.device}, clips of {s.clip_seconds:g} s, speech recognition "
                f"{'on' if s.transcribe else 'off'}, {len(s.excluded_patterns)} skip pattern(s).")
