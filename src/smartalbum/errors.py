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
