"""Leader election's decisions: create, acquire, renew or wait, judged by the local clock."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from continuum.controllers.election.decision import (
    Sighting,
    Step,
    Timings,
    claim,
    decide,
    expired,
    release,
    renew_overdue,
    sight,
)
from continuum.kube.leases import LeaseRecord

ME, OTHER = "op-a_1f2e3d4c", "op-b_9a8b7c6d"
DEFAULTS = Timings()
T0 = datetime.datetime(2026, 12, 3, 15, 0, 0, 123456, tzinfo=datetime.UTC)


def held(by: str, version: str = "100", duration: int = 15) -> LeaseRecord:
    return LeaseRecord(
        holder=by, duration_seconds=duration, acquire_time=T0, renew_time=T0,
        transitions=3, resource_version=version,
    )  # fmt: skip


def test_no_lease_is_created() -> None:
    assert decide(None, ME, 1000.0, DEFAULTS) is Step.CREATE


def test_my_lease_is_renewed() -> None:
    assert decide(Sighting(held(ME), 0.0), ME, 1000.0, DEFAULTS) is Step.RENEW


def test_a_released_lease_is_taken_at_once() -> None:
    released = release(held(OTHER), T0)
    assert released.holder == ""
    assert decide(Sighting(released, 999.9), ME, 1000.0, DEFAULTS) is Step.ACQUIRE


def test_another_holder_is_waited_for_until_the_lease_duration_passed_unchanged() -> None:
    seen = Sighting(held(OTHER), 1000.0)
    assert decide(seen, ME, 1000.0, DEFAULTS) is Step.WAIT
    assert decide(seen, ME, 1014.9, DEFAULTS) is Step.WAIT
    assert decide(seen, ME, 1015.0, DEFAULTS) is Step.ACQUIRE


def test_the_lease_states_its_own_duration_and_ours_stands_in_when_it_states_none() -> None:
    assert expired(Sighting(held(OTHER, duration=60), 0.0), 59.0, DEFAULTS) is False
    assert expired(Sighting(held(OTHER, duration=60), 0.0), 60.0, DEFAULTS) is True
    assert expired(Sighting(held(OTHER, duration=0), 0.0), 14.0, DEFAULTS) is False
    assert expired(Sighting(held(OTHER, duration=0), 0.0), 15.0, DEFAULTS) is True


def test_a_new_version_restarts_the_clock_and_the_same_one_keeps_it() -> None:
    first = sight(None, held(OTHER, "100"), 1000.0)
    assert first == Sighting(held(OTHER, "100"), 1000.0)
    again = sight(first, held(OTHER, "100"), 1010.0)
    assert again is first
    renewed = sight(again, held(OTHER, "101"), 1012.0)
    assert renewed == Sighting(held(OTHER, "101"), 1012.0)
    assert decide(renewed, ME, 1020.0, DEFAULTS) is Step.WAIT  # 15 s after 1000, not after 1012
    assert sight(renewed, None, 1013.0) is None


def test_the_written_renew_time_is_never_trusted_for_expiry() -> None:
    """A holder's clock an hour behind (renewTime long past) is still a live leader."""
    skewed = dataclasses.replace(held(OTHER), renew_time=T0 - datetime.timedelta(hours=1))
    assert decide(Sighting(skewed, 1000.0), ME, 1001.0, DEFAULTS) is Step.WAIT


def test_a_leader_is_overdue_only_past_the_renew_deadline() -> None:
    assert renew_overdue(100.0, 110.0, DEFAULTS) is False
    assert renew_overdue(100.0, 110.01, DEFAULTS) is True


def test_the_leader_is_gone_before_any_standby_can_take_over() -> None:
    """The standby saw the last renewal no earlier than it was sent: its takeover moment
    (sent + lease duration at the earliest) comes after the leader's exit (sent + deadline)."""
    for timings in (DEFAULTS, Timings(lease_duration=4, renew_deadline=3, retry_period=1)):
        sent = 500.0
        leader_exits = next(
            t / 100 for t in range(int(sent * 100), 10**6)
            if renew_overdue(sent, t / 100, timings)
        )  # fmt: skip
        standby = Sighting(held(OTHER, duration=int(timings.lease_duration)), sent)  # worst case
        takes_over = next(
            t / 100 for t in range(int(sent * 100), 10**6)
            if decide(standby, ME, t / 100, timings) is Step.ACQUIRE
        )  # fmt: skip
        assert leader_exits < takes_over
        assert takes_over - leader_exits == pytest.approx(
            timings.lease_duration - timings.renew_deadline, abs=0.02
        )


def test_claiming_from_another_counts_a_transition_and_renewing_does_not() -> None:
    later = T0 + datetime.timedelta(seconds=30)
    taken = claim(held(OTHER, "100"), ME, later, DEFAULTS)
    assert taken == LeaseRecord(
        holder=ME, duration_seconds=15, acquire_time=later, renew_time=later,
        transitions=4, resource_version="100",
    )  # fmt: skip
    even_later = later + datetime.timedelta(seconds=2)
    renewed = claim(dataclasses.replace(taken, resource_version="101"), ME, even_later, DEFAULTS)
    assert renewed.acquire_time == later
    assert renewed.renew_time == even_later
    assert renewed.transitions == 4
    assert renewed.resource_version == "101"  # the guard of the replace


def test_the_first_claim_of_a_new_lease_is_transition_zero() -> None:
    created = claim(None, ME, T0, Timings(lease_duration=7.5, renew_deadline=5, retry_period=1))
    assert created == LeaseRecord(
        holder=ME, duration_seconds=8, acquire_time=T0, renew_time=T0, transitions=0
    )


def test_claiming_a_released_lease_counts_a_transition() -> None:
    taken = claim(release(held(OTHER), T0), ME, T0, DEFAULTS)
    assert (taken.holder, taken.transitions, taken.duration_seconds) == (ME, 4, 15)


def test_release_clears_the_holder_and_keeps_the_count() -> None:
    released = release(held(ME, "105"), T0)
    assert released == dataclasses.replace(
        held(ME, "105"), holder="", duration_seconds=1, renew_time=T0
    )


@pytest.mark.parametrize(
    ("timings", "complaint"),
    [
        (Timings(retry_period=0), "retry period must be positive"),
        (Timings(renew_deadline=2, retry_period=2), "renew deadline must exceed the retry"),
        (Timings(lease_duration=10, renew_deadline=10), "lease duration must exceed the renew"),
    ],
)
def test_inconsistent_timings_are_named(timings: Timings, complaint: str) -> None:
    assert complaint in (timings.problem() or "")


def test_default_timings_are_controller_runtimes_and_their_bound() -> None:
    assert (DEFAULTS.lease_duration, DEFAULTS.renew_deadline, DEFAULTS.retry_period) == (15, 10, 2)
    assert DEFAULTS.problem() is None
    assert DEFAULTS.crash_takeover_bound == 19
