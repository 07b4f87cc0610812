"""continuum.trainer: the workload behind ``continuum train`` (runs inside a batch Job)."""
