"""continuum.storage."""
