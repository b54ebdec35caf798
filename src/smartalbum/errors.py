"""One exception family: every error a user can see carries a message and a hint."""

from __future__ import annotations


class SmartAlbumError(Exception):
    """An error with a user-facing one-line message and an optional hint on what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(SmartAlbumError):
    """Bad settings: unknown keys, wrong types, missing files."""


class LibraryError(SmartAlbumError):
    """The library directory or its catalog cannot be used."""


class NotFoundError(SmartAlbumError):
    """A photo, root or other object that was asked for does not exist."""


class InputError(SmartAlbumError):
    """A value given by the user (a path, a query, a limit) is not acceptable."""


class ModelError(SmartAlbumError):
    """A model could not be loaded or run."""


class TooLargeError(InputError):
    """An input over a size or length limit, such as a recording longer than the cap (HTTP 413)."""


class UnsupportedMediaError(InputError):
    """An input of a kind that cannot be used here, such as a question sent as an image (HTTP 415)."""


class NoSpeechError(InputError):
    """A recording in which no speech was heard (HTTP 422)."""
