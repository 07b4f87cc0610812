"""The ModelDeployment controller: serve the chosen model version, roll out a new one, roll a
failed rollout back.

``handlers`` (kopf's triggers) → ``controller`` (observe → plan → apply) over the pure
``rollout`` (version to serve, status, Events) and ``children`` (Deployment, Service, HPA);
``metrics`` holds the kind's Prometheus metrics.
"""
