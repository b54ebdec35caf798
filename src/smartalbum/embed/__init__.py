"""Text embedders behind one protocol (see text.py); heavy libraries load on first use."""
