"""HMAC-signed, expiring URLs for the disk backend (S3 presigns its own).

The signature covers what the URL grants: the action (download or upload), the file id, the
variant and the expiry time, under a key derived from ``secret_key`` for storage alone.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode


class Signer:
    def __init__(self, key: bytes) -> None:
        self.key = key

    def _mac(self, action: str, file_id: str, variant: str, expires: int) -> str:
        message = f"{action}\n{file_id}\n{variant}\n{expires}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def query(self, action: str, file_id: str, expires_in: int, variant: str = "") -> str:
        expires = int(time.time()) + expires_in
        params = {"expires": str(expires), "signature": self._mac(action, file_id, variant, expires)}
        if variant:
            params = {"variant": variant, **params}
        return urlencode(params)

    def valid(self, action: str, file_id: str, variant: str, expires: str | None, signature: str | None) -> bool:
        """Whether the signature matches and has not expired (compared in constant time)."""
        if not expires or not signature or not expires.isdigit() or len(expires) > 12:
            return False
        expected = self._mac(action, file_id, variant, int(expires))
        return hmac.compare_digest(expected, signature) and int(expires) >= time.time()
