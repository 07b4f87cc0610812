"""continuum.trainer."""
