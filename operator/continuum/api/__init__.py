"""continuum.api."""
