"""Personal data (GDPR): every plugin declares what it keeps about a member
(``register_personal_data``); the kernel exports it all into an archive and deletes it all
with the account. See ``docs/personal-data.md``.

``registry`` (the declarations, and the order they are called in), ``tables`` (the export
table), ``identity``, ``email``, ``files`` and ``profiles`` (the kernel's own personal data,
declared by its built-ins), ``archive`` (the zip), ``exports`` (asking, building, expiring),
``deletion`` (closing the account, the deletion job) and ``routes`` (served by ``auth``).
"""
