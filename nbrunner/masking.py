"""URL masking: the one place a URL's password is hidden before it is logged or shown.

Standard library at import (SQLAlchemy only inside :func:`mask_url`): the runner masks run
parameters with it, and the workbench (``research.urls``) everything else it shows.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

__all__ = ["mask_url"]

# scheme://user:PASSWORD@ — the password runs to the last "@" before the path/query
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@]*:)([^/?#]*)@")
_SECRET_QUERY = re.compile(r"(?i)([?&](?:password|passwd|pwd|secret|token)=)[^&#]*")


def mask_url(url: object) -> str:
    """``url`` with its password replaced by ``***``: safe to log, print, notify and share.

    The one masking function of the package (logs, the CLI, notifications, manifests, reports).
    SQLAlchemy parses the URL (``make_url(url).render_as_string(hide_password=True)``), so
    ``postgresql://u:pw@h/db``, ``redis://:pw@h:6379/0``, ``rediss://user:pw@h/0`` and
    ``unix://:pw@/tmp/redis.sock`` all come back as ``...:***@...``. Text SQLAlchemy cannot
    parse, or parses differently from the URL libraries that connect (a raw ``@`` in the
    password), is masked conservatively: everything between ``scheme://user:`` and the last
    ``@`` of the authority. A ``password=`` (``passwd``, ``pwd``, ``secret``, ``token``) query
    value is masked too. A URL without a password comes back unchanged, character for character.

    Parameters
    ----------
    url : str or sqlalchemy.engine.URL
        A URL (a :class:`sqlalchemy.engine.URL` is rendered as text first).

    Returns
    -------
    str
        The masked URL.
    """
    text = _SECRET_QUERY.sub(r"\1***", str(url))
    try:
        from sqlalchemy.engine import make_url  # imported here: importers stay light

        parsed = make_url(text)
    except Exception:  # noqa: BLE001 - any text at all must come back masked, never raise
        return _USERINFO.sub(r"\1***@", text)
    try:
        seen = urlsplit(text).password  # how redis-py / urllib read the same text
    except ValueError:  # e.g. an unbalanced "[": not a URL urllib can connect to either
        seen = None
    if parsed.password is None or seen is None or unquote(seen) != str(parsed.password):
        return _USERINFO.sub(r"\1***@", text)  # no password, or an ambiguous one: mask it all
    return parsed.render_as_string(hide_password=True)
