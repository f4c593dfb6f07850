"""Errors a user can act on. The CLI prints their message (no traceback) and exits non-zero."""


class PrefrlError(Exception):
    """Base class: something the user can fix (bad config, bad data, missing model)."""


class ConfigError(PrefrlError):
    """An unknown or malformed configuration key or value."""


class DataError(PrefrlError):
    """A dataset that cannot be used: unreadable file, malformed row, missing field, empty."""


class ModelNotFoundError(PrefrlError):
    """A model name or path that does not resolve to weights."""


class NonFiniteLossError(PrefrlError):
    """A NaN or infinite loss, caught before the optimizer step could poison the weights."""


class RunDirectoryError(PrefrlError):
    """An output_dir another run holds (its lock) or has filled (its checkpoints)."""
