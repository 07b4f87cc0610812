"""continuum.controllers."""
