"""mmvsearch engine: everything headless (media, models, index, search, speech, training, CLI).

Never imports Qt or ``app``: the GUI is a thin layer over this package.
"""

__version__ = "0.1.0"
