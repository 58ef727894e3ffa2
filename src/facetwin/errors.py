"""Errors that the CLI turns into one clear line and an exit code (never a traceback).

Library code raises these for anything a user can cause or fix: bad paths, bad data, wrong
models. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class FacetwinError(Exception):
    """Base class: a user-facing failure with a one-line message."""

    exit_code = 1


class UsageError(FacetwinError):
    """Bad arguments: unknown plugin name, incompatible options."""

    exit_code = 2


class InputError(FacetwinError):
    """A missing, unreadable, corrupt or empty input (image, video, face set, model)."""

    exit_code = 3


class NoFaceError(FacetwinError):
    """The input was readable but held no usable face."""

    exit_code = 4


class OutputError(FacetwinError):
    """The output could not be written (permissions, disk full)."""

    exit_code = 5


class ModelMismatchError(FacetwinError):
    """A checkpoint or face set that does not fit what it is used with."""

    exit_code = 6


class BusyError(FacetwinError):
    """Another facetwin process is writing the same output right now."""

    exit_code = 7
