"""continuum.server."""
