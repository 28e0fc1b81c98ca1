"""purls-pl: zero-shot skeleton action recognition with part-aware language alignment."""

__version__ = "0.1.0"
