"""Typed errors. Library code raises these; only the CLI/GUI edges turn them into messages."""


class MMVError(Exception):
    """Base class for every error the engine raises on purpose."""


class MediaError(MMVError):
    """A file could not be opened or decoded (corrupt, unsupported, missing)."""


class NoVideoStreamError(MediaError):
    """The file has no decodable video stream."""


class DeviceError(MMVError):
    """The requested compute device is not usable."""


class ModelError(MMVError):
    """A model or checkpoint could not be created or loaded."""


class LibraryError(MMVError):
    """The library (database, index files) is unusable or inconsistent."""


class DiskFullError(LibraryError):
    """Writing to the library failed because the disk is full."""


class LibraryBusyError(LibraryError):
    """Another process holds the library (its writer lock, or SQLite's lock past the timeout)."""


class SettingsError(LibraryError):
    """settings.json is unreadable or holds an invalid value (the message names the file or key)."""


class QueryError(MMVError):
    """A search query is invalid (empty text, unreadable audio/image, unknown clip)."""


class Cancelled(MMVError):
    """A long job stopped because its cancel token was set."""


class RecorderError(MMVError):
    """Microphone recording failed (no device, busy, permission denied)."""


class TrainingError(MMVError):
    """Fine-tuning could not run (no data, bad checkpoint)."""


def error_reason(exc: BaseException) -> str:
    """The human part of a decoder error ('Invalid data found when processing input'), no errno or path."""
    return str(getattr(exc, "strerror", None) or exc)


class ClusterError(MMVError):
    """Distributed indexing could not start (Ray missing, cluster unreachable)."""
