"""Requests the registry itself makes to other hosts, whoever asked for them: a cache's upstream
(chalicelib/pullthrough/upstream.py), an identity provider's discovery document and keys
(chalicelib/access/federation.py) and its token endpoints (chalicelib/access/sso.py). One rule
for where they may go (`may_fetch`), one budget of time for all the requests one registry request
makes (`Budget`), one connection pool.

    where            https to a host that is not an internal address; a loopback origin (the
                     local stack's) may also name loopback, plain http only on its own origin.
    how long         at the budget's end every socket its requests use is shut, so a sender of a
                     byte every few seconds is cut off too (a read timeout restarts with each byte).
"""
from __future__ import annotations
import ipaddress
import socket
import threading
import time
from typing import Optional
from urllib.parse import urlsplit

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
REDIRECT_STATUSES = (301, 302, 303, 307, 308)


def secure_url(url: str) -> bool:
    """https://, or http:// to this machine (a registry on loopback, as docker allows): what a
    cache's upstream URL may be."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return bool(parts.hostname) and (parts.scheme == "https" or (parts.scheme == "http"
                                                                 and parts.hostname in LOOPBACK_HOSTS))


def may_fetch(target: str, upstream_url: str, same_origin_http: bool = True) -> bool:
    """Whether a cache of `upstream_url` may send a request to `target` (a redirect's Location, a
    token realm): https to a host that is no internal address; loopback only when the upstream
    itself is on loopback, and plain http then only to the upstream's own origin (a token realm,
    `same_origin_http=False`, may be another loopback port)."""
    try:
        parts, upstream = urlsplit(target), urlsplit(upstream_url)
        parts.port, upstream.port  # noqa: B018 - raise on a port that is not a number
    except ValueError:
        return False
    if not parts.hostname or parts.scheme not in ("http", "https") or parts.username or parts.password:
        return False
    if internal(parts.hostname):
        if upstream.hostname not in LOOPBACK_HOSTS or parts.hostname not in LOOPBACK_HOSTS:
            return False
        return parts.scheme == "https" or not same_origin_http or _origin(parts) == _origin(upstream)
    return parts.scheme == "https"


def _origin(parts) -> tuple:
    return parts.scheme, parts.hostname, parts.port or {"http": 80, "https": 443}[parts.scheme]


def internal(host: str) -> bool:
    """A name for this machine, or an address of it, of the link (169.254.169.254, the instance
    metadata service) or of a private network."""
    if host in LOOPBACK_HOSTS or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:  # the forms C's resolver also reads as IPv4: 127.1, 2130706433, 0x7f000001
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return False  # a name: DNS decides, as for every https client
    return not address.is_global


class Unreachable(Exception):
    """The other host gave no usable answer (network, timeout, 5xx, 429, a refused redirect)."""


class RefusedPeer(OSError):
    """A connection reached an address the request may not go to (a name that resolved to an
    internal address): closed before anything was sent."""


class Budget:
    """The time one registry request may spend at an upstream. It starts with the first request;
    at its end every connection the requests used is shut down, so that a read blocked on an
    upstream sending a byte now and then returns (a read timeout alone restarts with each byte)."""

    def __init__(self, seconds: float, who: str = "the other host"):
        self.seconds, self.who = seconds, who
        self._deadline: Optional[float] = None
        self._sockets: set = set()
        self._lock = threading.Lock()
        self._timer: Optional[threading.Timer] = None
        self.spent = False

    def remaining(self) -> float:
        with self._lock:
            if self._deadline is None:
                self._deadline = time.monotonic() + self.seconds
                self._timer = threading.Timer(self.seconds, self._spend)
                self._timer.daemon = True
                self._timer.start()
            left = self._deadline - time.monotonic()
        if left <= 0 or self.spent:
            raise Unreachable(f"{self.who} did not finish within {self.seconds:g} s")
        return left

    def watch(self, sock) -> None:
        with self._lock:
            if self.spent:
                _shut(sock)
            else:
                self._sockets.add(sock)

    def end(self) -> None:
        """The registry request is done with the upstream: nothing is shut after this."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._sockets.clear()

    def _spend(self) -> None:
        with self._lock:
            self.spent = True
            for sock in self._sockets:
                _shut(sock)
            self._sockets.clear()


def _shut(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # closed already


# The budget of the request this thread is sending: connections register their sockets with it.
SENDING = threading.local()


_POOL = None


def pool():
    """One connection pool per container, for every cache's upstream; its connections register
    their sockets with the budget of the request that uses them."""
    global _POOL
    if _POOL is None:
        import urllib3
        from urllib3.connection import HTTPConnection, HTTPSConnection

        def watched(base):
            class Watched(base):
                def connect(self):
                    super().connect()
                    self._watch()

                def request(self, *args, **kwargs):
                    if self.sock is not None:
                        self._watch()  # a connection from the pool
                    return super().request(*args, **kwargs)

                def _watch(self):
                    budget = getattr(SENDING, "budget", None)
                    if budget is not None and self.sock is not None:
                        budget.watch(self.sock)
                    peer_allowed = getattr(SENDING, "peer_allowed", None)
                    if peer_allowed is not None and self.sock is not None:
                        address = self.sock.getpeername()[0]
                        if not peer_allowed(address):
                            self.sock.close()
                            self.sock = None
                            SENDING.refused_peer = address
                            raise RefusedPeer(address)
            return Watched

        class Pool(urllib3.HTTPConnectionPool):
            ConnectionCls = watched(HTTPConnection)

        class TLSPool(urllib3.HTTPSConnectionPool):
            ConnectionCls = watched(HTTPSConnection)

        _POOL = urllib3.PoolManager(num_pools=8, maxsize=4)
        _POOL.pool_classes_by_scheme = {"http": Pool, "https": TLSPool}
    return _POOL


def plainly(error: Exception) -> str:
    """What went wrong, in words a docker user reads (never urllib3's text, which names pools,
    objects and addresses)."""
    import urllib3
    errors = urllib3.exceptions
    for kind, words in ((errors.NewConnectionError, "connection refused"),
                        (errors.ConnectTimeoutError, "timed out connecting"), (errors.SSLError, "TLS failed"),
                        (errors.ReadTimeoutError, "timed out"), (errors.ProtocolError, "the connection broke")):
        if isinstance(error, kind) or isinstance(getattr(error, "reason", None), kind):
            return words
    return "the connection failed"


def release(response) -> None:
    """Give a connection back to the pool with nothing left to read on it (what is left of a small
    answer is read; a connection given back mid-body would answer the next request with it)."""
    try:
        response.drain_conn()
    finally:
        response.release_conn()


def _send(method: str, url: str, budget: Budget, headers: dict, body: Optional[bytes]):
    """One request within `budget`, its answer unread (the caller reads what it needs, then closes)."""
    import urllib3
    left = budget.remaining()
    SENDING.budget = budget
    try:
        return pool().request(method, url, headers=headers, body=body, preload_content=False, redirect=False,
                              retries=urllib3.Retry(total=1, connect=1, read=0, redirect=0, status=0),
                              timeout=urllib3.Timeout(connect=min(5, left), read=min(5, left)))
    except urllib3.exceptions.HTTPError as error:
        raise Unreachable(f"{budget.who} did not finish within {budget.seconds:g} s" if budget.spent
                          else f"{urlsplit(url).netloc} did not answer ({plainly(error)})") from None
    finally:
        SENDING.budget = None


def _read(response, url: str, budget: Budget, max_bytes: int) -> bytes:
    """At most `max_bytes` of an answer's body, or Unreachable. Nothing beyond is read: the
    connection is closed, not drained (a host that floods would otherwise be read to its end)."""
    import urllib3
    try:
        body = response.read(max_bytes + 1, decode_content=True)
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise Unreachable(f"{budget.who} did not finish within {budget.seconds:g} s" if budget.spent
                          else f"reading from {urlsplit(url).netloc} failed ({plainly(error)})") from None
    if len(body) > max_bytes:
        raise Unreachable(f"{urlsplit(url).netloc} sent more than {max_bytes} bytes")
    return body


def fetch(url: str, allowed, budget: Budget, max_bytes: int, headers: Optional[dict] = None,
          max_redirects: int = 3) -> bytes:
    """The body of a GET of `url` that answers 200, following at most `max_redirects` redirects,
    each target (and `url`) held to `allowed(target)`; at most `max_bytes`, within `budget`.
    Anything else is Unreachable (where a refused redirect pointed is not told)."""
    from urllib.parse import urljoin
    for _ in range(max_redirects + 1):
        if not allowed(url):
            raise Unreachable("refused to fetch from an address the registry does not fetch from")
        response = _send("GET", url, budget, headers or {}, None)
        try:
            location = response.headers.get("location")
            if response.status in REDIRECT_STATUSES and location:
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise Unreachable(f"{urlsplit(url).netloc} answered {response.status}")
            return _read(response, url, budget, max_bytes)
        finally:
            response.close()
    raise Unreachable(f"redirected more than {max_redirects} times")


def post_form(url: str, form: dict, allowed, budget: Budget, max_bytes: int, headers: Optional[dict] = None):
    """(status, body) of a POST of an urlencoded `form` to `url`, as OAuth 2.0 endpoints take it:
    never redirected (a redirect is Unreachable: the form holds secrets), a 200 or 4xx answer's
    body at most `max_bytes`, within `budget`; a 5xx or anything else is Unreachable."""
    from urllib.parse import urlencode
    if not allowed(url):
        raise Unreachable("refused to send to an address the registry does not fetch from")
    response = _send("POST", url, budget, {"Content-Type": "application/x-www-form-urlencoded",
                                           "Accept": "application/json", **(headers or {})},
                     urlencode(form).encode())
    try:
        if response.status != 200 and not 400 <= response.status < 500:
            raise Unreachable(f"{urlsplit(url).netloc} answered {response.status}")
        return response.status, _read(response, url, budget, max_bytes)
    finally:
        response.close()


def post_checked(url: str, body: bytes, headers: dict, budget: Budget, max_bytes: int, peer_allowed) -> int:
    """The status of a POST of `body` to `url`, never redirected, within `budget`, of which at
    most `max_bytes` of the answer are read (the rest is not: the connection is closed); each
    connection's address held to `peer_allowed(address)` once connected and before anything is
    sent (so a name that resolves to an internal address, at any time, is refused); Unreachable
    when no answer came."""
    SENDING.peer_allowed, SENDING.refused_peer = peer_allowed, None
    try:
        response = _send("POST", url, budget, headers, body)
    except Unreachable:
        if SENDING.refused_peer is not None:
            raise Unreachable(f"refused: {urlsplit(url).hostname} is an internal address") from None
        raise
    finally:
        SENDING.peer_allowed = None
    try:
        response.read(max_bytes, decode_content=False)
        return response.status
    except Exception:  # noqa: BLE001 - the status came; what follows it is not ours to judge
        return response.status
    finally:
        response.close()
