"""The simulator: traffic as the real Metrics Platform producers send it (no wiki needed).

- :mod:`world` users, devices and identifiers from a seeded RNG;
- :mod:`decide` the sampling and enrolment decisions (the ``mpsandbox.platform`` functions);
- :mod:`producers` how each producer shapes its POSTs;
- :mod:`plan` what each simulated user does, driven by the instrument definitions;
- :mod:`bugs` the labelled mistakes ``--bugs`` injects, and their manifest;
- :mod:`run` pacing and sending, to an intake URL or into the local pipeline.

Nothing here imports Textual.
"""

from pathlib import Path

#: The demo's built-in stream configs and experiments.
DEMO_CONFIG = Path(__file__).resolve().parent / "demo_config"
DEMO_STREAMS = DEMO_CONFIG / "streams.yaml"
DEMO_EXPERIMENTS = DEMO_CONFIG / "experiments.yaml"
