"""The two ways a call to an ML backend fails (both are :mod:`assay.errors`
kinds, so the HTTP layer maps them like any other bad input)."""

from __future__ import annotations

from assay.errors import InvalidInput, Unsupported


class BackendUnreachable(InvalidInput):
    """The backend could not be reached, or answered with an HTTP error."""


class BackendProtocolError(Unsupported):
    """The backend answered, but not in Label Studio's ML backend protocol."""
