"""Pure helpers every other package may use, which import nothing else of fedsph.

The one safe path for links and markup (`safe_links`, `sanitize`, `mention_markup`), number
parsing (`numbers`), printable log text (`logtext`), owner-only files (`files`), this node's
URL layout (`urls`) and the housing vocabulary (`vocab`). No I/O beyond `files`, no database.
"""
