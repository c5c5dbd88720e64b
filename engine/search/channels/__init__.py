"""Search channels: each answers a query with clip hits and says why ("seen", "heard", "said", "read").

A channel is a small module with one class satisfying ``Channel``; it returns raw hits (or hits
already ``standardised`` when it knows its own background, like transcripts) and ignores query
kinds it has nothing to say about. Fusion (engine.search.fusion) puts the channels on one scale
and combines them. Adding a channel is adding a module and one line to ``CHANNELS``.
"""

from __future__ import annotations

from typing import Protocol

from engine.hits import ClipHit
from engine.search.channels.heard import Heard
from engine.search.channels.read import Read
from engine.search.channels.said import Said
from engine.search.channels.seen import Seen
from engine.search.query import Query
from engine.search.sources import Sources


class Channel(Protocol):
    reason: str        # the word results show for this channel's hits
    own_thread: bool   # reads only text tables: runs beside the others (engine.search.searcher)

    def hits(self, sources: Sources, query: Query) -> list[ClipHit]: ...


# Order is the order hits enter fusion (ties keep the first): pictures, sounds, words said, words shown.
CHANNELS: list[Channel] = [Seen(), Heard(), Said(), Read()]
