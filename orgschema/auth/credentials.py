"""Finding the session token in a request, exactly as Better-auth 1.7 finds it.

Better-auth keeps a session's token in ``session.token`` and sends the browser
``<token>.<signature>``, URL-encoded, in the cookie
``[__Secure-]<prefix>.session_token``; the signature is the standard, padded
base64 of HMAC-SHA256(secret, token): 44 characters ending in ``=``. With its
bearer plugin the same signed value (or, unless ``requireSignature`` is set,
the bare token) comes in ``Authorization: Bearer ...``.

Each step below copies one function of the installed Better-auth 1.7.25 or
better-call 1.4.5 (named in its comment), including their leniencies, so that a
credential is accepted here exactly when Better-auth's ``getSession`` would
look it up; ``tests/test_auth_better_auth.py`` checks that on the real server.
This module does no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

from orgschema.errors import ConfigurationError
from orgschema.settings import Settings

#: Better-auth's name for the session cookie, after its prefix and a dot.
SESSION_COOKIE = "session_token"

#: What Better-auth puts before the cookie's name when its base URL is https.
SECURE_PREFIX = "__Secure-"

# What JavaScript's String.prototype.trim() removes (WhiteSpace and
# LineTerminator); Python's str.strip() removes a different set.
_JS_WHITESPACE = (
    "\t\n\v\f\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)

# A signature better-call verifies: 43 base64 digits and one "=" (32 bytes).
_SIGNATURE = re.compile(r"[A-Za-z0-9+/]{43}=")
_SIGNATURE_LENGTH = 44

# A "%" that does not start an escape: decodeURIComponent throws on it.
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")

_STANDARD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@dataclass(frozen=True)
class CredentialRules:
    """How to read and verify Better-auth's session credentials, from :class:`Settings`.

    :ivar cookie_names: The cookie names read, the ``__Secure-`` one first.
    :ivar accept_unsigned_bearer: Whether a bare token in a bearer header counts.
    """

    cookie_names: tuple[str, str]
    accept_unsigned_bearer: bool
    _hmac: hmac.HMAC = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> CredentialRules:
        """The rules for ``settings``.

        :raises ConfigurationError: no Better-auth secret is configured.
        """
        if settings.better_auth_secrets:
            # Better-auth 1.7 (context/create-context.mjs) signs and verifies
            # session cookies with the first entry only; older entries serve
            # its encrypted cookies and tokens, never this signature.
            secret: str | None = settings.better_auth_secrets[0][1]
        else:
            secret = settings.better_auth_secret
        if secret is None:
            raise ConfigurationError(
                "no Better-auth secret to verify session cookies with: set BETTER_AUTH_SECRET "
                "(or BETTER_AUTH_SECRETS) to what the TypeScript service uses, or pass "
                "Settings(better_auth_secret=...)"
            )
        plain = f"{settings.auth_cookie_prefix}.{SESSION_COOKIE}"
        return cls(
            cookie_names=(SECURE_PREFIX + plain, plain),
            accept_unsigned_bearer=settings.auth_accept_unsigned_bearer,
            # Keyed once; each signature copies it (cheaper than keying again).
            _hmac=hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256),
        )

    def session_token(self, cookies: Iterable[str], authorization: str | None) -> str | None:
        """The verified session token a request carries, or ``None``.

        A bearer value that passes the bearer plugin's check replaces the
        cookie, as in Better-auth; otherwise the ``__Secure-`` cookie is read
        when the request has one, else the plain one. Whatever is chosen must
        then carry a valid signature.

        :param cookies: The request's ``Cookie`` header values, in order.
        :param authorization: Its first ``Authorization`` header, if any.
        :returns: The token (``session.token``), never one that fails its
            signature or that PostgreSQL's text could not hold.
        """
        signed = None if authorization is None else self._bearer_value(authorization)
        if signed is None:
            # Node's HTTP server joins repeated Cookie headers with "; ".
            jar = parse_cookies("; ".join(cookies), only=self.cookie_names)
            signed = jar.get(self.cookie_names[0]) or jar.get(self.cookie_names[1])
        if not signed:
            return None
        token = self._unsign(signed)
        if token is None or "\x00" in token:
            return None
        return token

    def sign(self, token: str) -> str:
        """``token`` signed as Better-auth signs it, before URL-encoding (``token.sig=``)."""
        return f"{token}.{base64.b64encode(self._mac(token)).decode('ascii')}"

    def _mac(self, value: str) -> bytes:
        mac = self._hmac.copy()
        mac.update(value.encode("utf-8"))
        return mac.digest()

    def _unsign(self, value: str) -> str | None:
        # better-call getSignedCookie (dist/context.mjs) and verifySignature
        # (dist/crypto.mjs): the token is everything before the last dot; atob
        # decodes the 44 characters, ignoring the 2 unused bits of the last digit.
        dot = value.rfind(".")
        if dot < 1:
            return None
        token, signature = value[:dot], value[dot + 1 :]
        if len(signature) != _SIGNATURE_LENGTH or not _SIGNATURE.fullmatch(signature):
            return None
        try:
            expected = self._mac(token)
        except UnicodeEncodeError:
            return None
        if not hmac.compare_digest(base64.b64decode(signature), expected):
            return None
        return token

    def _bearer_value(self, header: str) -> str | None:
        # better-auth plugins/bearer (dist/plugins/bearer/index.mjs): what the
        # plugin writes into the session cookie, or None when it leaves the
        # request alone (so the cookie, if any, is read instead).
        if header[:7].lower() != "bearer ":
            return None
        token = header[7:].strip(_JS_WHITESPACE)
        if not token:
            return None
        try:
            if "." in token:
                value = _try_decode(token)
            elif self.accept_unsigned_bearer:
                value = self.sign(token)
            else:
                return None
            # The plugin checks the first two dot-separated parts with a
            # looser base64 decoder than the cookie's; the cookie check still
            # follows.
            parts = value.split(".")
            if not hmac.compare_digest(self._mac(parts[0]), _loose_base64(parts[1])):
                return None
        except (UnicodeEncodeError, ValueError):
            return None
        return value


def parse_cookies(header: str, only: Collection[str] | None = None) -> dict[str, str]:
    """A ``Cookie`` header's cookies, read as better-call's ``parseCookies`` reads them.

    The first cookie of a name wins; names and values are trimmed; a value
    starting with ``"`` loses its first and last character; a value holding
    ``%`` is URL-decoded when it decodes cleanly and kept as sent otherwise.

    :param header: The header's value.
    :param only: The names wanted (others are skipped, not decoded); all when ``None``.
    :returns: Names to values.
    """
    cookies: dict[str, str] = {}
    index = 0
    while index < len(header):
        equals = header.find("=", index)
        if equals == -1:
            break
        end = header.find(";", index)
        if end == -1:
            end = len(header)
        elif end < equals:
            index = header.rfind(";", 0, equals) + 1
            continue
        name = header[index:equals].strip(_JS_WHITESPACE)
        if name not in cookies and (only is None or name in only):
            value = header[equals + 1 : end].strip(_JS_WHITESPACE)
            if value[:1] == '"':
                value = value[1:-1]
            cookies[name] = _try_decode(value)
        index = end + 1
    return cookies


def _try_decode(value: str) -> str:
    """JavaScript's ``decodeURIComponent``, giving ``value`` back where it would throw.

    It throws on a "%" that starts no escape and on escapes that are not
    UTF-8 (unquote leaves the first alone, so it is checked before).
    """
    if "%" not in value or _BAD_ESCAPE.search(value):
        return value
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        return value


def _loose_base64(value: str) -> bytes:
    """@better-auth/utils ``base64.decode``: either alphabet, stops at ``=``, ignores spare bits.

    :raises ValueError: a character of neither alphabet.
    """
    alphabet = _URL_SAFE if "-" in value or "_" in value else _STANDARD
    out = bytearray()
    buffer = 0
    bits = 0
    for char in value:
        if char == "=":
            break
        digit = alphabet.find(char)
        if digit < 0:
            raise ValueError(f"not a base64 digit: {char!r}")
        buffer = ((buffer << 6) | digit) & 0xFFFF
        bits += 6
        if bits >= 8:
            bits -= 8
            out.append((buffer >> bits) & 0xFF)
    return bytes(out)
