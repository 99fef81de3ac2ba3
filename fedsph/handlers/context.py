"""The handlers' context, defined in fedsph/federation/incoming.py (the features the handlers
call take it too, and they sit below the handlers); the handlers import it from here."""

from fedsph.federation.incoming import HandlerContext, Ignored

__all__ = ["HandlerContext", "Ignored"]
