"""mmvsearch desktop app: a thin PySide6 layer over :mod:`engine.api`.

Nothing in ``app`` imports torch or the models at import time, so the window can appear before
they load; the models load in a worker thread after the window is shown.
"""
