"""Failed console sign-ins, counted per principal name and per client address in DynamoDB (so
every Lambda container counts the same), each in windows of spec.SIGNIN_WINDOW_SECONDS.

    before a sign-in   one batch read of both counts; either at its limit: 429 with Retry-After
                       (the window's end), the token not even checked
    a failure          both counts go up by one (a count whose window ended starts again); the
                       failure that reaches a limit is audited as `console.signin.throttled`,
                       once per burst: the refusals after it are not (they try nothing)
    a success          the principal's count goes (the address's stays: it may be guessing names)
"""
from __future__ import annotations
from typing import List, NamedTuple, Optional

from pynamodb.exceptions import UpdateError

from chalicelib.metadata import audit
from chalicelib.metadata.models import SigninFailures, read_together
from chalicelib.oci import spec


class Limit(NamedTuple):
    subject: str  # the item's key
    most: int


def limits(name: str, address: Optional[str]) -> List[Limit]:
    return [Limit(f"user:{name[:64]}", spec.SIGNIN_FAILURES_PER_PRINCIPAL),
            Limit(f"addr:{address or '-'}", spec.SIGNIN_FAILURES_PER_ADDRESS)]


def retry_after(now: float, name: str, address: Optional[str]) -> Optional[int]:
    """Seconds until a sign-in may be tried again, or None when it may be tried now."""
    found = read_together(*[(SigninFailures, (limit.subject,)) for limit in limits(name, address)])
    waits = [int(item.window_start + spec.SIGNIN_WINDOW_SECONDS - now) + 1
             for limit, item in zip(limits(name, address), found)
             if item is not None and _current(item, now) and item.failures >= limit.most]
    return max(waits) if waits else None


def failed(backend, now: float, name: str, address: Optional[str]) -> None:
    """Count a failed sign-in against the name and the address."""
    for limit in limits(name, address):
        count = _count(limit.subject, now)
        if count == limit.most:
            backend.audit.record("console.signin.throttled", outcome=audit.DENIED, actor=name[:64] or "-",
                                 bounded=True, subject=limit.subject, failures=count,
                                 window_seconds=spec.SIGNIN_WINDOW_SECONDS)


def succeeded(name: str) -> None:
    SigninFailures(limits(name, None)[0].subject).delete()


def _current(item: SigninFailures, now: float) -> bool:
    return now < item.window_start + spec.SIGNIN_WINDOW_SECONDS


def _count(subject: str, now: float) -> int:
    """Add one failure in the subject's current window (a new window if it ended); the count."""
    start = int(now)
    item = SigninFailures(subject)
    try:  # the window still runs: one more
        item.update(actions=[SigninFailures.failures.add(1)],
                    condition=SigninFailures.window_start > start - spec.SIGNIN_WINDOW_SECONDS)
    except UpdateError:  # none, or its window ended: this failure starts one
        item.update(actions=[SigninFailures.failures.set(1), SigninFailures.window_start.set(start),
                             SigninFailures.expires_at.set(start + spec.SIGNIN_WINDOW_SECONDS)])
    return int(item.failures)
