"""continuum.kube."""
