"""Exceptions with messages meant for users."""


class GBSearchError(Exception):
    """Base class: the CLI prints these as one clear line and exits with status 2."""


class InputError(GBSearchError, ValueError):
    """Bad user input: file, structure, angle, option."""


class RelaxationError(GBSearchError, RuntimeError):
    """LAMMPS could not relax a structure; the message carries LAMMPS' own."""


class CheckpointError(GBSearchError):
    """A model checkpoint is missing, corrupt or does not match the request."""
