"""Open and click tracking: rewrite a rendered HTML part so that each link goes through a
signed click redirect and a 1x1 image reports the open.

Click tokens carry the message's uid and the link's index, never the URL: the redirect
looks the URL up in the message's stored ``links``, so it can only lead where the message
led (no open redirect), and a token for another message or a changed index fails the
signature. Only ``http(s)`` links are rewritten; the unsubscribe link is left alone.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable

from .tokens import Signer

ROUTES = "/api/v1/email"
_LINK = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
# The smallest transparent GIF: 1x1, one colour.
PIXEL_GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")


def open_url(signer: Signer, public_url: str, uid: str) -> str:
    return f"{public_url}{ROUTES}/open/{signer.sign('open', [uid])}"


def click_url(signer: Signer, public_url: str, uid: str, index: int) -> str:
    return f"{public_url}{ROUTES}/click/{signer.sign('click', [uid, str(index)])}"


def unsubscribe_url(signer: Signer, public_url: str, address: str, category: str) -> str:
    return f"{public_url}{ROUTES}/unsubscribe/{signer.sign('unsubscribe', [address, category])}"


def track(html: str, uid: str, signer: Signer, public_url: str, skip: Callable[[str], bool]) -> tuple[str, list[str]]:
    """The HTML with links rewritten and the pixel added, and the original links by index."""
    links: list[str] = []

    def rewrite(match: re.Match[str]) -> str:
        url = html_lib.unescape(match.group(3)).strip()
        if not url.lower().startswith(("http://", "https://")) or skip(url):
            return match.group(0)
        links.append(url)
        tracked = click_url(signer, public_url, uid, len(links) - 1)
        return f"{match.group(1)}{match.group(2)}{html_lib.escape(tracked)}{match.group(2)}"

    rewritten = _LINK.sub(rewrite, html)
    pixel = f'<img src="{html_lib.escape(open_url(signer, public_url, uid))}" width="1" height="1" alt="" style="display:none">'
    closing = rewritten.lower().rfind("</body>")
    if closing == -1:
        return rewritten + pixel, links
    return rewritten[:closing] + pixel + rewritten[closing:], links
