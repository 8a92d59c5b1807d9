"""Notifications: types from plugins, ``notify`` through the outbox, the inbox, preferences,
real-time streams and digests. The ``notifications`` built-in plugin serves them."""
