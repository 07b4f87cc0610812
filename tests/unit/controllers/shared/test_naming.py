"""Child names are deterministic DNS labels of at most 63 characters."""

from __future__ import annotations

import re

from continuum.controllers.shared.naming import child_name, label_value
from continuum.controllers.trainingjob.job import training_labels

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_short_name_is_parent_and_suffix() -> None:
    assert child_name("iris-1", "train") == "iris-1-train"


def test_long_name_is_cut_with_a_stable_hash() -> None:
    parent = "a" * 80
    name = child_name(parent, "train")
    assert len(name) == 63
    assert DNS_LABEL.match(name)
    assert name == child_name(parent, "train")
    assert name != child_name("a" * 81, "train")


def test_dots_become_dashes() -> None:
    assert child_name("iris.v2", "train") == "iris-v2-train"


def test_exactly_63_is_kept() -> None:
    parent = "b" * (63 - len("-train"))
    assert child_name(parent, "train") == parent + "-train"


def test_label_values_fit() -> None:
    assert label_value("x") == "x"
    long = label_value("y" * 100)
    assert len(long) <= 63
    assert long == label_value("y" * 100)


def test_training_labels() -> None:
    labels = training_labels("iris-1", "iris")
    assert labels["app.kubernetes.io/managed-by"] == "continuum"
    assert labels["app.kubernetes.io/part-of"] == "continuum"
    assert labels["continuum.dev/training-job"] == "iris-1"
    assert labels["continuum.dev/model"] == "iris"
