"""The Lease record as the API server spells it: MicroTime, spec fields, the version guard."""

from __future__ import annotations

import datetime

from continuum.kube.leases import LeaseRecord, format_micro_time, parse_micro_time

# A Lease as kube-apiserver 1.34 returns it (kube-controller-manager's own, trimmed).
SERVED = {
    "apiVersion": "coordination.k8s.io/v1",
    "kind": "Lease",
    "metadata": {
        "name": "continuum-operator",
        "namespace": "continuum-system",
        "resourceVersion": "48213",
        "uid": "0c6c1e4e-3b43-4a5e-9f38-5f1f7f1d9a10",
    },
    "spec": {
        "acquireTime": "2026-12-03T15:01:02.000003Z",
        "holderIdentity": "continuum-7d9c-x2k_5e1f0a2b",
        "leaseDurationSeconds": 15,
        "leaseTransitions": 2,
        "renewTime": "2026-12-03T15:04:05.123456Z",
    },
}


def test_a_served_lease_reads_into_the_record() -> None:
    record = LeaseRecord.from_body(SERVED)
    assert record == LeaseRecord(
        holder="continuum-7d9c-x2k_5e1f0a2b",
        duration_seconds=15,
        acquire_time=datetime.datetime(2026, 12, 3, 15, 1, 2, 3, tzinfo=datetime.UTC),
        renew_time=datetime.datetime(2026, 12, 3, 15, 4, 5, 123456, tzinfo=datetime.UTC),
        transitions=2,
        resource_version="48213",
    )


def test_the_record_writes_back_the_same_spec_and_guards_with_its_version() -> None:
    body = LeaseRecord.from_body(SERVED).to_body("continuum-system", "continuum-operator")
    assert body["spec"] == SERVED["spec"]
    assert body["metadata"] == {
        "name": "continuum-operator",
        "namespace": "continuum-system",
        "resourceVersion": "48213",
    }


def test_a_new_record_has_no_version_and_no_times_it_does_not_know() -> None:
    body = LeaseRecord(holder="me", duration_seconds=15).to_body("ns", "lease")
    assert "resourceVersion" not in body["metadata"]
    assert body["spec"] == {
        "holderIdentity": "me",
        "leaseDurationSeconds": 15,
        "leaseTransitions": 0,
    }


def test_a_lease_with_an_empty_spec_is_free() -> None:
    record = LeaseRecord.from_body({"metadata": {"resourceVersion": "7"}, "spec": {}})
    assert (record.holder, record.duration_seconds, record.transitions) == ("", 0, 0)
    assert record.renew_time is None
    assert record.resource_version == "7"


def test_unreadable_fields_are_absent_not_errors() -> None:
    spec = {"leaseDurationSeconds": "15", "leaseTransitions": True, "renewTime": "yesterday"}
    record = LeaseRecord.from_body({"spec": spec})
    assert (record.duration_seconds, record.transitions, record.renew_time) == (0, 0, None)


def test_micro_time_is_utc_with_microseconds() -> None:
    plus_one = datetime.timezone(datetime.timedelta(hours=1))
    when = datetime.datetime(2026, 12, 3, 16, 4, 5, 120, tzinfo=plus_one)
    assert format_micro_time(when) == "2026-12-03T15:04:05.000120Z"
    assert parse_micro_time("2026-12-03T15:04:05.000120Z") == when
    assert parse_micro_time("2026-12-03T15:04:05Z") == datetime.datetime(
        2026, 12, 3, 15, 4, 5, tzinfo=datetime.UTC
    )
    assert parse_micro_time(None) is None
    assert parse_micro_time("") is None
