"""smartalbum: a self-hosted, private photo library that understands its photos."""

__version__ = "0.1.0"
