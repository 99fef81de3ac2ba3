"""E-mail (issue 14, item 3), optional: nothing is sent unless FEDSPH_SMTP_HOST is set.

The database is the queue (outgoing_mails, `queue.py`): a page or a command only inserts a row;
the worker (`sender.py`) writes the message when it sends it (`texts.py`, in the member's
language), mints the one-time link it carries (`links.py`: password resets, address
confirmations; invitations through fedsph.accounts), and sends it over SMTP (`smtp.py`, built
by `message.py`). `notices.py` batches what waits for a member; `unsubscribe.py` signs the links
that stop those. A feature layer: imports accounts, federation and models, never web.
"""
