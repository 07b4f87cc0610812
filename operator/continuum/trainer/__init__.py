"""continuum.trainer: the workload behind ``continuum train`` (runs inside a batch Job).

OpenMP threads wait passively (``OMP_WAIT_POLICY``, read once when scikit-learn loads its
OpenMP runtime, so set here, before any trainer module imports scikit-learn): spinning threads
made HistGradientBoosting's fit 45-70x slower on a loaded 2-CPU machine (``threads.py``).
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
