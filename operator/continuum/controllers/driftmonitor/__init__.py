"""The DriftMonitor controller: scheduled drift checks of a ModelDeployment's logged traffic,
and a retraining TrainingJob when drift holds.

``handlers`` (kopf's triggers and the schedule) → ``controller`` (observe → plan → apply) over
the pure ``checks`` (when a check is due, its Job), ``verdicts`` (a finished check → status and
Events) and ``retrain`` (whether and what to retrain); ``metrics`` holds the kind's metrics.
"""
