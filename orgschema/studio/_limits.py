"""How much the studio takes before it refuses: sign-in failures, body sizes, and whose address counts.

Failed sign-ins are counted per account (the e-mail typed) and per client
address, each over a sliding window: a failure stops counting once it is
older than the window, so nobody stays locked out. Successful sign-ins are
never counted. The client address is the connection's peer, or, when that
peer is a proxy the operator trusts, the address the proxy reports in
``X-Forwarded-For``; a header from anyone else is ignored.

Counters live in the process's memory: with several worker processes each
keeps its own.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from starlette.types import Scope

from orgschema.errors import ConfigurationError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The clock of the sliding windows; a module attribute so tests can move time.
_clock = time.monotonic


@dataclass(frozen=True)
class StudioLimits:
    """What the studio accepts before refusing: sign-in failures and request sizes.

    :param failures_per_account: Failed sign-ins for one e-mail within
        ``failure_window`` before that e-mail is refused (429) until the
        oldest of them leaves the window.
    :param failures_per_address: The same, for one client address.
    :param failure_window: How long a failed sign-in counts.
    :param max_login_body: Bytes of a sign-in request's body (and of any
        other request outside ``/api``); larger ones get 413 unread.
    :param max_api_body: Bytes of a request body to the studio's ``/api``.
    :param max_query: Bytes of a query string; longer ones get 414.
    :param tracked_keys: Accounts and addresses remembered at most; beyond
        that the ones whose failures all left the window are forgotten first.
    """

    failures_per_account: int = 10
    failures_per_address: int = 50
    failure_window: timedelta = timedelta(minutes=15)
    max_login_body: int = 16 * 1024
    max_api_body: int = 1024 * 1024
    max_query: int = 8 * 1024
    tracked_keys: int = 20_000

    def __post_init__(self) -> None:
        for name in (
            "failures_per_account",
            "failures_per_address",
            "max_login_body",
            "max_api_body",
            "max_query",
            "tracked_keys",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"studio limit {name} must be a whole number, 1 or more")
        if self.failure_window <= timedelta(0):
            raise ConfigurationError("the studio's failure_window must be longer than zero")


class _Window:
    """Failures per key within a sliding window, remembering at most ``limit`` per key."""

    def __init__(self, limit: int, window: float, tracked_keys: int) -> None:
        self.limit = limit
        self.window = window
        self.tracked_keys = tracked_keys
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until ``key`` may try again, or ``None`` when it may now."""
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        if len(failures) < self.limit:
            return None
        # Only the last `limit` failures are kept: the oldest leaving the
        # window lets one more attempt in.
        return failures[0] + self.window - now

    def fail(self, key: str, now: float) -> None:
        failures = self._failures.get(key)
        if failures is None:
            if len(self._failures) >= self.tracked_keys:
                self._forget(now)
            failures = self._failures[key] = deque(maxlen=self.limit)
        failures.append(now)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def discard(self, key: str, at: float) -> None:
        failures = self._failures.get(key)
        if failures is not None and at in failures:
            failures.remove(at)
            if not failures:
                del self._failures[key]

    def _forget(self, now: float) -> None:
        expired = [key for key, times in self._failures.items() if times[-1] <= now - self.window]
        for key in expired:
            del self._failures[key]
        # Still full (a flood of distinct keys): drop the longest-idle half.
        if len(self._failures) >= self.tracked_keys:
            idle = sorted(self._failures, key=lambda key: self._failures[key][-1])
            for key in idle[: len(idle) // 2 + 1]:
                del self._failures[key]


@dataclass(frozen=True)
class Attempt:
    """A sign-in under way: counted as a failure until it turns out otherwise."""

    account: str
    address: str
    at: float


class SignInLimiter:
    """The studio's sign-in rate limit: failures per account and per address, successes free.

    An attempt counts as a failure from the moment it starts (:meth:`begin`),
    so that many sent at once cannot all slip in before the first one fails;
    a success, or an attempt that never reached the password check, takes its
    count back.
    """

    def __init__(self, limits: StudioLimits) -> None:
        window = limits.failure_window.total_seconds()
        self._accounts = _Window(limits.failures_per_account, window, limits.tracked_keys)
        self._addresses = _Window(limits.failures_per_address, window, limits.tracked_keys)

    def retry_after(self, account: str, address: str) -> int | None:
        """Whole seconds until this sign-in may be tried (for ``Retry-After``), or ``None``."""
        now = _clock()
        waits = [
            wait
            for wait in (
                self._accounts.retry_after(account, now),
                self._addresses.retry_after(address, now),
            )
            if wait is not None
        ]
        return max(1, math.ceil(max(waits))) if waits else None

    def begin(self, account: str, address: str) -> Attempt:
        """Count an attempt that :meth:`retry_after` let through, until it is settled.

        Call it right after :meth:`retry_after`, with nothing awaited between.
        """
        now = _clock()
        self._accounts.fail(account, now)
        self._addresses.fail(address, now)
        return Attempt(account, address, now)

    def succeeded(self, attempt: Attempt) -> None:
        """A right password: the account's failures are forgotten, the address's stay."""
        self._accounts.forget(attempt.account)
        self._addresses.discard(attempt.address, attempt.at)

    def void(self, attempt: Attempt) -> None:
        """The attempt never reached the password check (a CSRF refusal, say): not a failure."""
        self._accounts.discard(attempt.account, attempt.at)
        self._addresses.discard(attempt.address, attempt.at)


###############################################################################
# Whose address it is


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed.

    :param entries: IP addresses and networks (``10.0.0.1``, ``10.0.0.0/8``,
        ``::1``), or ``*`` for any peer (only when nothing but the proxy can
        reach the studio, e.g. a Unix socket). Empty: no proxy is trusted and
        the headers are ignored.
    :raises ConfigurationError: an entry is neither an address nor a network.
    """

    def __init__(self, entries: Sequence[str] = ()) -> None:
        if isinstance(entries, str):
            entries = [part for part in entries.split(",") if part.strip()]
        self.any = False
        self.networks: list[Network] = []
        for entry in (item.strip() for item in entries):
            if entry == "*":
                self.any = True
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError as exc:
                raise ConfigurationError(
                    f"--forwarded-allow-ips: {entry!r} is not an IP address or network "
                    "(such as 10.0.0.1 or 10.0.0.0/8)"
                ) from exc

    def __bool__(self) -> bool:
        return self.any or bool(self.networks)

    def trusts(self, host: str) -> bool:
        """Whether ``host`` (a peer or a hop in ``X-Forwarded-For``) is a trusted proxy."""
        if self.any:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


def client_of(scope: Scope, proxies: TrustedProxies) -> tuple[str, str]:
    """The client address and scheme of a request, believing only trusted proxies.

    Walks ``X-Forwarded-For`` from the right (the hop nearest the studio),
    past every trusted proxy: the first address that is not one is the
    client. Without a trusted peer the header is ignored entirely, so a client
    cannot choose the address it is counted under.

    :returns: ``(address, scheme)``; the address is ``"unknown"`` when the
        server gives none.
    """
    peer = scope.get("client")
    address = str(peer[0]) if peer else "unknown"
    scheme = str(scope.get("scheme", "http"))
    if not proxies or not proxies.trusts(address):
        return address, scheme
    forwarded: list[str] = []
    proto: str | None = None
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-for":
            forwarded += [hop.strip() for hop in value.decode("latin-1").split(",")]
        elif name == b"x-forwarded-proto":
            proto = value.decode("latin-1").strip().lower()
    hops = [hop for hop in forwarded if hop]
    for hop in reversed(hops):
        address = hop
        if not proxies.trusts(hop):
            break
    if proto in ("http", "https"):
        scheme = proto
    return address, scheme
