"""What AWS says when it is busy, and what the registry does about it: retry, then say so.

botocore's standard retry mode (every client here: boto3's and pynamodb's, each allowed
MAX_ATTEMPTS tries) already retries throttling (ThrottlingException,
ProvisionedThroughputExceededException, S3's 503 SlowDown) with jittered exponential backoff.
It does not retry a DynamoDB transaction cancelled only because another one held an item (TransactionCanceledException whose reasons are all `None` or
`TransactionConflict`, or a single write's TransactionConflictException): the same request,
sent again, is right. `on_needs_retry` retries those, at most CONFLICT_ATTEMPTS times with full
jitter (25 ms doubling, at most 1 s each: at most ~4 s in all), and never one a condition refused.

A write whose condition failed because another changed what it read (a tag moved, a namespace's
count changed) is the registry's own loop to run: read again, check again, write again, at most
RACE_ATTEMPTS times, pausing (`pause`) with the same full jitter between tries, so that fifty
pushes racing for one item spread out rather than meet again at once.

When the retries are spent the error reaches dispatch, which answers 503 TOOMANYREQUESTS with
Retry-After (`busy`), never a 500. Clients do not all retry it (docker's push gives up on a
503 to an upload), so the retries here are what keeps a push alive; the 503 says "run it again".
"""
from __future__ import annotations
import random
import time
from typing import Optional

# Every AWS client's attempts at one call (botocore's standard mode, pynamodb's connections and
# the conflict retries below): a throttled or conflicted call is tried at most this many times.
MAX_ATTEMPTS = 8
CLIENT_RETRIES = {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}
CONFLICT_ATTEMPTS = MAX_ATTEMPTS
BASE_DELAY_SECONDS, MAX_DELAY_SECONDS = 0.025, 1.0
# A read-check-write loop's tries of a write that lost a race: at most ~8 s of pauses in all.
RACE_ATTEMPTS = 12
# Error codes that mean "busy, not wrong": retried by botocore (throttling) or here (conflicts).
BUSY_CODES = frozenset({"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
                        "SlowDown", "TransactionConflictException", "TransactionInProgressException",
                        "ServiceUnavailable", "InternalServerError"})
RETRY_AFTER_SECONDS = 1


def _conflict_only(parsed: dict) -> bool:
    """A cancelled transaction that no condition refused: only held items (and the items not
    attempted because of them)."""
    error = parsed.get("Error", {})
    code = error.get("Code")
    if code == "TransactionConflictException":
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = [reason.get("Code") for reason in parsed.get("CancellationReasons") or ()]
    return "TransactionConflict" in reasons and set(reasons) <= {"None", "TransactionConflict"}


def _delay(attempts: int) -> float:
    return random.uniform(0, min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2 ** attempts))


def pause(attempts: int) -> None:
    """Before a lost race's next try (`attempts` made so far; none before the first)."""
    if attempts:
        time.sleep(_delay(attempts))


def on_needs_retry(response=None, attempts: int = 0, **_) -> Optional[float]:
    """botocore's needs-retry hook: the delay before resending a conflicted write, or None."""
    if response is None or attempts >= CONFLICT_ATTEMPTS:
        return None
    _, parsed = response
    if not isinstance(parsed, dict) or not _conflict_only(parsed):
        return None
    return _delay(attempts)


def _chain(error: Optional[BaseException]):
    """The exception and what caused it (pynamodb wraps botocore's error as `cause`)."""
    for _ in range(5):
        if error is None:
            return
        yield error
        error = getattr(error, "cause", None) or error.__cause__ or error.__context__


def _responses_of(error: BaseException):
    """AWS's parsed answers behind an exception: botocore's, and pynamodb's copies of it (which
    keep its code but not always its cancellation reasons)."""
    for link in _chain(error):
        response = getattr(link, "response", None)
        if isinstance(response, dict) and response.get("Error", {}).get("Code"):
            yield response


def busy(error: BaseException) -> bool:
    """Whether an error means AWS was busy once the retries were spent (throttled, or a
    transaction conflicting again and again), rather than that the registry is wrong."""
    return any(_conflict_only(response) or response["Error"]["Code"] in BUSY_CODES
               for response in _responses_of(error))
