"""The TrainingJob controller: one batch Job per TrainingJob, its status from that Job, the
trainer's termination message and the manifest it stored.

``handlers`` (kopf's triggers) → ``controller`` (observe → plan → apply) over the pure
builders ``job`` (the batch Job), ``status`` (the status from what was observed) and the S3
read of ``manifest``; ``metrics`` holds the kind's Prometheus metrics.
"""
