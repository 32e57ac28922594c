"""The single user-facing error type: the CLI prints it as one 'error: ...' line."""


class MCUCError(Exception):
    """An error caused by the user's input or options; message says cause and remedy."""
