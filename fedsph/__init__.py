"""fedsph: a small ActivityPub server for the social production of habitat."""

__version__ = "0.1.0"
