"""The API client's pieces that need no server: throttle, Retry-After, error text."""

from __future__ import annotations

import email.utils
import time

import pytest

from tap_oktopost.client import CallThrottle, oktopost_message, retry_after_seconds


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_throttle_keeps_every_window_under_its_limit() -> None:
    clock = FakeClock()
    throttle = CallThrottle(clock=clock, sleep=clock.sleep)
    calls = []
    for _ in range(300):
        throttle.wait_for_turn()
        calls.append(clock.now)
        clock.now += 0.01
    for index, start in enumerate(calls):
        in_minute = [t for t in calls[index:] if t < start + 60]
        in_five_seconds = [t for t in calls[index:] if t < start + 5]
        assert len(in_minute) <= 60
        assert len(in_five_seconds) <= 120
    assert calls[-1] >= 4 * 60


def test_throttle_does_not_wait_under_the_limits() -> None:
    clock = FakeClock()
    throttle = CallThrottle(clock=clock, sleep=clock.sleep)
    for _ in range(60):
        throttle.wait_for_turn()
        clock.now += 1.0
    assert clock.slept == []


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (retry_after_seconds(later) or 0) <= 31


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (
            {"Result": False, "Errors": {"API": {"Error": "Campaign not found"}}},
            "API.Error: Campaign not found",
        ),
        (
            {"Errors": {"Param": {"get": "Missing value for parameter postId"}}},
            "Param.get: Missing value for parameter postId",
        ),
        ({"Result": False, "Errors": []}, "no error message"),
        ({"Result": False, "Errors": ["one", {"Two": "two"}]}, "one; Two: two"),
        (None, "no error message"),
    ],
)
def test_oktopost_messages_of_every_shape(body: object, text: str) -> None:
    assert oktopost_message(body) == text
