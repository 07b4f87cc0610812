"""The chart tests' rendering fixtures, for the dashboard ConfigMap tests."""

from tests.unit.chart.conftest import helm, render, render_error

__all__ = ["helm", "render", "render_error"]
