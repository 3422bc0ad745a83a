"""Keep RPC credentials out of everything mbt shows or stores.

Provider URLs carry API keys in the path (``/v3/<key>``), the query (``?apikey=…``) or the userinfo
(``https://user:pass@host``). mbt only ever shows an endpoint as ``scheme://host[:port]``
(:func:`redact_url`), and any text that may echo a URL or key back — an exception message, a provider's
JSON-RPC error — goes through :meth:`Redactor.scrub` before it reaches a log line, an error, a report or
the database.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

MASK = "***"
# Path segments and query values shorter than this are not scrubbed on their own: masking "v3" or
# "mainnet" everywhere would mangle ordinary text, and API keys are long (Infura 32, Alchemy 32 characters).
# They are never printed anyway, because URLs are only ever shown redacted. Userinfo is always scrubbed.
_MIN_SEGMENT = 8
_MIN_USERINFO = 3


def redact_url(url: str) -> str:
    """``scheme://host[:port]`` of an endpoint URL, without userinfo, path, query or fragment.

    Parameters
    ----------
    url : str
        An RPC endpoint URL, possibly carrying credentials.

    Returns
    -------
    str
        E.g. ``https://mainnet.infura.io`` for ``https://mainnet.infura.io/v3/KEY``; ``<invalid URL>`` when
        the text does not parse as a URL with a host (nothing of it is echoed back then).
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    if not parts.scheme or not host:
        return "<invalid URL>"
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{shown}" + (f":{port}" if port is not None else "")


def secret_parts(url: str) -> list[str]:
    """Every fragment of ``url`` that may be a credential (longest first), raw and percent-decoded.

    Parameters
    ----------
    url : str
        An RPC endpoint URL.

    Returns
    -------
    list of str
        The whole URL, the path+query, userinfo pieces, path segments and query values.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return [url]
    strong: set[str] = {url.strip()}
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        strong.add(userinfo)
        strong.update(userinfo.split(":", 1))
    tail = parts.path + (f"?{parts.query}" if parts.query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    weak: set[str] = {tail, parts.path, parts.query, parts.fragment, *parts.path.split("/")}
    for item in re.split(r"[&;]", parts.query):
        weak.add(item)
        weak.update(item.split("=", 1))
    strong |= {unquote(s) for s in strong}
    weak |= {unquote(s) for s in weak}
    host = (parts.hostname or "").lower()
    keep = {s for s in strong if len(s) >= _MIN_USERINFO}
    keep |= {s for s in weak if len(s) >= _MIN_SEGMENT and s.strip("/").lower() not in host}
    return sorted(keep, key=len, reverse=True)


class Redactor:
    """Scrub credentials of a set of endpoint URLs out of free text.

    Parameters
    ----------
    urls : iterable of str
        The endpoint URLs whose secrets must never appear in output.
    """

    def __init__(self, urls: list[str] | tuple[str, ...]) -> None:
        secrets: set[str] = set()
        for url in urls:
            secrets.update(secret_parts(url))
        # A host is not a secret; never mask it (it would hide which endpoint failed).
        hosts = {redact_url(u) for u in urls} | {redact_url(u).split("://", 1)[-1] for u in urls}
        self._secrets = sorted(secrets - hosts, key=len, reverse=True)
        self._pattern = (re.compile("|".join(re.escape(s) for s in self._secrets), re.IGNORECASE)
                         if self._secrets else None)

    def scrub(self, text: str) -> str:
        """``text`` with every known secret fragment replaced by ``***``."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)
