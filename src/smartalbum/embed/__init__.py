"""Text embedders behind one protocol (text.py), chosen by name from a registry (registry.py).

Heavy libraries and model files load on first use, not on import.
"""
