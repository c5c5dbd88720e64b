"""Topics: the library's clips grouped by clustering their embeddings, each group named from what
its clips share (see ``discover.py``)."""
