"""chainrule's version, read from the installed package's metadata: ``pyproject.toml`` is the one
place it is written (``chainrule --version`` and ``chainrule.__version__`` both read this)."""

from __future__ import annotations

#: What the version reads when chainrule runs from a source tree that was never installed.
UNKNOWN = "0+unknown"


def package_version() -> str:
    """The version of the installed ``chainrule`` distribution (``0.1.0``), or :data:`UNKNOWN`."""
    from importlib import metadata  # imported here: ``import chainrule`` does not pay for it

    try:
        return metadata.version("chainrule")
    except metadata.PackageNotFoundError:
        return UNKNOWN
