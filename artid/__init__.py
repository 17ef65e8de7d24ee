"""artid: instance-level recognition of artworks (the Met dataset benchmark and a recognition service)."""

__version__ = "0.1.0"
