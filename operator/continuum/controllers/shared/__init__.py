"""What every controller shares: the work queue (``queue``: per-object serialisation, retries
with backoff), the read-plan-write loop and object helpers (``objects``), conditions, names and
labels (``naming``), what every workload pod gets (``pods``), Job-creation pacing (``pacing``),
the metrics registry (``metrics``) and the heap trimmer (``heap``)."""
