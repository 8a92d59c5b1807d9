"""Does the client accept JSON? Decides between serving and a 406 problem."""

from __future__ import annotations

JSON_RANGES = ("application/json", "application/problem+json")


def accepts_json(accept: str | None) -> bool:
    """``True`` unless the ``Accept`` header excludes JSON.

    The most specific media range decides (RFC 9110 §12.5.1): ``application/json;q=0``
    refuses JSON even next to ``*/*``. A missing or empty header accepts anything.
    """
    if not accept or not accept.strip():
        return True
    best: tuple[int, float] | None = None  # (specificity, q)
    for item in accept.split(","):
        media, _, params = item.partition(";")
        media = media.strip().lower()
        specificity = _specificity(media)
        if specificity < 0:
            continue
        q = _quality(params)
        if best is None or specificity > best[0]:
            best = (specificity, q)
        elif specificity == best[0]:
            best = (specificity, max(best[1], q))
    return best is not None and best[1] > 0


def _specificity(media: str) -> int:
    if media in JSON_RANGES or (media.startswith("application/") and media.endswith("+json")):
        return 2
    if media == "application/*":
        return 1
    if media == "*/*":
        return 0
    return -1


def _quality(params: str) -> float:
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 1.0
    return 1.0
