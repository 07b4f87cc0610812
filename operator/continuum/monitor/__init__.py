"""continuum.monitor."""
