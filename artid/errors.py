"""The one exception type that reaches the user as a clean message."""


class ArtidError(Exception):
    """A problem with the user's input or files.

    The command line prints ``error: <message>`` and exits with status 2 instead
    of a traceback, so the message must name the file or field at fault and,
    where possible, say how to fix it.
    """
