"""The simulated clients' decisions, made with the platform's own functions (no second
implementation): the sampling decision (PLATFORM.md §5) and ``mw-user`` enrolment (§7).
"""

from __future__ import annotations

import random
from typing import Any, Literal

from mpsandbox.platform import experiments as exps
from mpsandbox.platform import sampling

Family = Literal["web", "app"]


def in_sample(identifier: str | None, sample: Any, family: Family) -> bool:
    """Whether a client of ``family`` sends an event whose unit identifier is
    ``identifier`` under a stream's ``sample`` config (None: the stream does not sample)."""
    if not isinstance(sample, dict):
        return True
    unit = sample.get("unit")
    rate = sample.get("rate")
    unit = unit if isinstance(unit, str) else ""
    if family == "app":
        return sampling.app_in_sample(identifier, rate, unit)
    return sampling.web_in_sample(identifier, rate, unit)


def event_in_sample(event: dict[str, Any], stream_config: Any, family: Family) -> bool:
    """:func:`in_sample` for an event under its stream's config (the identifier the
    stream's unit samples by, read from the event)."""
    sample = stream_config.get("sample") if isinstance(stream_config, dict) else None
    if not isinstance(sample, dict):
        return True
    unit = sample.get("unit")
    ident = sampling.identifier_for(event, unit if isinstance(unit, str) else "")
    return in_sample(ident, sample, family)


def mw_user_enrollment(
    central_user_id: int | str, experiment: exps.Experiment, wiki: str | None = None
) -> tuple[bool, str | None, str]:
    """(enrolled, group, subject_id) for a logged-in user, as Test Kitchen computes them."""
    subject = exps.subject_id(central_user_id, experiment.name)
    enrolled, group = exps.assign(subject, experiment.rate_for(wiki), experiment.groups)
    return enrolled, group, subject


def edge_unique_enrollment(
    rng: random.Random, experiment: exps.Experiment, wiki: str | None = None
) -> tuple[bool, str | None, str]:
    """(enrolled, group, subject_id) for an everyone experiment: the CDN enrols (its
    algorithm is not public, so a seeded draw at the experiment's rate stands in) and the
    client sends the placeholder subject ``awaiting``."""
    enrolled = rng.random() < experiment.rate_for(wiki)
    group = rng.choice(experiment.groups) if enrolled and experiment.groups else None
    return enrolled, group, exps.SUBJECT_ID_AWAITING


def enroll(
    experiment: exps.Experiment,
    *,
    rng: random.Random,
    central_user_id: int | None,
    wiki: str | None = None,
) -> tuple[bool, str | None, str | None]:
    """Enrolment by the experiment's sampling unit; ``mw-user`` needs a logged-in user."""
    if experiment.sampling_unit == "mw-user":
        if central_user_id is None:
            return False, None, None
        return mw_user_enrollment(central_user_id, experiment, wiki)
    return edge_unique_enrollment(rng, experiment, wiki)
