"""mmvsearch desktop app: a thin PySide6 layer over :mod:`engine.api`.

Nothing in ``app`` imports torch or the models at import time, so the window can appear before
they load; the models load in a worker thread after the window is shown.
"""

from app.compat import pin_singletons

# before any Qt call: PySide6 6.12.0 on Python 3.11 under-counts references to None/True/False
pin_singletons()
