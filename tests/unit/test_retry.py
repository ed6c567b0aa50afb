"""The shared retry policy, driven through the one fake HTTP seam (`tests/fakehttp.py`):
bounded attempts and time, exponential backoff with jitter, Retry-After, idempotent requests only."""

from __future__ import annotations

import io

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from pipe.http import RetryBudget, RetryPolicy, is_transient, never_sent, new_session, parse_retry_after
from tests.fakehttp import ScriptedTransport

URL = "https://registry.example.com/thing"


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def session_with(script: list, policy: RetryPolicy | None = None, jitter: float = 0.0, **options):
    transport = ScriptedTransport(script)
    session = new_session(auth=("u", "t"), policy=policy, transport=transport, **options)
    clock = FakeClock()
    session.clock, session.sleep, session.random = clock, clock.sleep, lambda: jitter
    return session, transport, clock


def refused_connection() -> requests.ConnectionError:
    reason = NewConnectionError(None, "Connection refused")
    return requests.ConnectionError(MaxRetryError(None, URL, reason))


def test_reads_are_retried_with_exponential_backoff_until_success():
    session, transport, clock = session_with([503, 502, 500, 200])
    assert session.get(URL).status_code == 200
    assert len(transport.requests) == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_attempts_are_bounded_and_the_last_answer_is_returned():
    session, transport, clock = session_with([503] * 10, policy=RetryPolicy(attempts=3))
    assert session.get(URL).status_code == 503
    assert len(transport.requests) == 3
    assert len(clock.sleeps) == 2


def test_total_time_is_bounded():
    policy = RetryPolicy(attempts=50, total_seconds=10, backoff=1.0, backoff_max=4.0)
    session, transport, clock = session_with([500] * 50, policy=policy)
    assert session.get(URL).status_code == 500
    # 1 + 2 + 4 = 7 s waited; one more 4 s wait would pass the 10 s budget.
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert len(transport.requests) == 4


def test_jitter_stretches_each_wait_within_its_bound():
    session, _, clock = session_with([503, 503, 200], jitter=1.0)
    session.get(URL)
    assert clock.sleeps == [0.75, 1.5]  # 0.5·(1 + 0.5·1), 1.0·(1 + 0.5·1)


def test_jitter_is_random_in_range():
    policy = RetryPolicy()
    delays = {round(policy.backoff_delay(3), 6) for _ in range(50)}
    assert len(delays) > 1
    assert all(2.0 <= delay <= 3.0 for delay in delays)


def test_retry_after_is_honoured():
    session, _, clock = session_with([(429, {"Retry-After": "7"}), 200])
    assert session.get(URL).status_code == 200
    assert clock.sleeps == [7.0]


def test_retry_after_beyond_the_time_budget_gives_up_at_once():
    session, transport, clock = session_with([(429, {"Retry-After": "3600"}), 200])
    assert session.get(URL).status_code == 429
    assert clock.sleeps == [] and len(transport.requests) == 1


def test_retry_after_as_http_date():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None and parse_retry_after("5") == 5.0


def test_connection_errors_and_truncated_bodies_are_retried_for_reads():
    script = [requests.ConnectionError("reset"), requests.exceptions.ChunkedEncodingError("truncated"), 200]
    session, transport, _ = session_with(script)
    assert session.get(URL).status_code == 200
    assert len(transport.requests) == 3


def test_puts_are_not_retried_by_default():
    session, transport, clock = session_with([503, 200])
    assert session.put(URL, data=b"x").status_code == 503
    assert len(transport.requests) == 1 and clock.sleeps == []


def test_broken_put_is_not_repeated_by_default():
    session, transport, _ = session_with([requests.ConnectionError("reset mid-body"), 200])
    with pytest.raises(requests.ConnectionError):
        session.put(URL, data=b"x")
    assert len(transport.requests) == 1


def test_idempotent_puts_are_retried_with_the_body_rewound():
    session, transport, _ = session_with([requests.ConnectionError("reset"), 502, 201], idempotent_writes=True)
    body = io.BytesIO(b"same bytes")
    assert session.put(URL, data=body).status_code == 201
    assert [(sent.method, sent.body) for sent in transport.requests] == [("PUT", b"same bytes")] * 3


def test_a_body_that_cannot_be_rewound_is_sent_once():
    class Stream:
        def read(self, size=-1):
            return b""

    session, transport, _ = session_with([503, 201], idempotent_writes=True)
    assert session.put(URL, data=Stream()).status_code == 503
    assert len(transport.requests) == 1


def test_a_refused_connection_is_retried_for_any_method():
    session, transport, _ = session_with([refused_connection(), 201])
    assert session.post(URL, data=b"x").status_code == 201
    assert len(transport.requests) == 2


def test_client_errors_are_not_retried():
    session, transport, _ = session_with([404, 200])
    assert session.get(URL).status_code == 404
    assert len(transport.requests) == 1


def test_never_sent_tells_refused_from_reset():
    assert never_sent(refused_connection())
    assert never_sent(requests.ConnectTimeout("slow"))
    assert not never_sent(requests.ConnectionError("Connection reset by peer"))
    assert not never_sent(requests.ReadTimeout("stalled"))


def test_budget_used_by_publishers_for_their_own_writes():
    clock = FakeClock()
    budget = RetryBudget(RetryPolicy(attempts=3), clock, clock.sleep, lambda: 0.0)
    assert budget.wait(None, "x") and budget.wait(2.0, "x") and not budget.wait(None, "x")
    assert clock.sleeps == [0.5, 2.0]


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [(503, True), (429, True), (409, False), (401, False), (requests.ConnectionError("x"), True)],
)
def test_transient_outcomes(outcome, expected):
    if isinstance(outcome, int):
        response = requests.Response()
        response.status_code = outcome
        outcome = response
    assert is_transient(outcome) is expected


def test_certificate_failures_are_not_retried():
    session, transport, clock = session_with([requests.exceptions.SSLError("certificate verify failed"), 200])
    with pytest.raises(requests.exceptions.SSLError):
        session.get(URL)
    assert len(transport.requests) == 1 and clock.sleeps == []
