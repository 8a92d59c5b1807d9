"""Path convertors for ids. ``{session_id:hex32}`` matches only 32 hexadecimal characters, so a
sibling path (``/sessions/revoke-others``) is never taken for an id: each method of it and of
the id's path gets its own 405 with the right ``Allow``."""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor


class Hex32Convertor(Convertor[str]):
    regex = "[0-9a-f]{32}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("hex32", Hex32Convertor())
