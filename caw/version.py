"""The version of caw (one place; the package metadata and `caw --version` read it)."""

__version__ = "0.1.0"
