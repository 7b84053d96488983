"""Instrument definitions and the checks that judge captured events against them.

A definition (YAML or JSON, see ``instruments/README.md``) says what an instrument must
send: its stream and schema, its experiment, Test Kitchen's configuration fields (so the
same files serve ``/api/v1/instruments``) and ``expects``, the interactions with their
fields, required values, counts, funnel order and experiment order.

- :mod:`.definitions` loads and validates definitions (every problem with file, line and
  path; never an exception for a bad file),
- :mod:`.checks` judges events against them (pass; fail with the reason and the nearest
  event; not seen),
- :mod:`.sources` reads the events to judge (a store, a running sandbox, fixture files),
- :mod:`.report` renders results as text, JSON or JUnit XML,
- :mod:`.scaffold` writes a definition from captured events.

Nothing here imports Textual: the CLI, the TUI's Instruments screen and tests share it.
"""

from __future__ import annotations
