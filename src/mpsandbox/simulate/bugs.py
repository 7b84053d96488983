"""The mistakes real instruments make, injected on purpose by ``--bugs``, each labelled.

Each bug goes into exactly one event and is listed in the manifest with that event's
``meta.id`` (the simulator sets ``meta.id`` on every event so events can be named; EventGate
keeps a client's ``meta.id``) and what mpsandbox must report for it:

| bug | what is done | expected |
|---|---|---|
| ``missing_attribute`` | a requested contextual attribute is left out | finding ``attributes.missing_requested`` |
| ``out_of_sample`` | an event the client should have sampled out is sent | finding ``sampling.out_of_sample`` |
| ``wrong_group`` | an ``mw-user`` exposure claims the other group | finding ``experiment.group_mismatch`` |
| ``bad_dt`` | a browser sends ``dt`` in whole seconds | finding ``time.dt_format`` |
| ``invalid_field`` | ``page.namespace_id`` sent as a string | validation error ``type`` at ``.page.namespace_id`` |
| ``duplicate`` | an event is queued twice and sent again (same ``meta.id``, new ``dt``) | finding ``duplicate.meta_id`` on the second copy |
| ``funnel_disorder`` | step 3 of a funnel is stamped before step 2 | finding ``funnel.disorder`` |

Each bug's event says so itself: its ``meta.id`` is a labelled UUID (``injected_id``), which
:func:`injected_bug` reads back, so that whatever shows the event (the Errors and Instruments
screens of ``mpsandbox demo``) can mark it as a mistake made on purpose, without the manifest.

"Found exactly once": the bug's event (for ``duplicate``, its second copy) carries the
expected finding or validation error, no other event carries it, and a run with ``--bugs``
has no other finding of severity warning or error and no other invalid or error event.
"""

from __future__ import annotations

import copy
import random
import re
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from mpsandbox.platform import attributes as attrs
from mpsandbox.simulate.producers import Item

BUG_KINDS: tuple[str, ...] = (
    "missing_attribute",
    "out_of_sample",
    "wrong_group",
    "bad_dt",
    "invalid_field",
    "duplicate",
    "funnel_disorder",
)
EXPECTED_FINDING: dict[str, str] = {
    "missing_attribute": "attributes.missing_requested",
    "out_of_sample": "sampling.out_of_sample",
    "wrong_group": "experiment.group_mismatch",
    "bad_dt": "time.dt_format",
    "duplicate": "duplicate.meta_id",
    "funnel_disorder": "funnel.disorder",
}
EXPECTED_VALIDATION: dict[str, dict[str, str]] = {
    "invalid_field": {"keyword": "type", "dataPath": ".page.namespace_id"},
}
#: The last group of an injected event's meta.id: this mark, then the bug's number in
#: BUG_KINDS (4 hex digits). A UUID of version 8 (RFC 9562's "custom" version), so it is
#: never mistaken for the version-4 ids of the clean traffic.
INJECTED_MARK = "0bad0bad"
_INJECTED = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-" + INJECTED_MARK + r"([0-9a-f]{4})"
)


def injected_id(bug: str, rng_bits: int) -> str:
    """A meta.id that labels its event as the injected ``bug`` (``rng_bits``: 128 random
    bits for the unlabelled part)."""
    number = (rng_bits >> 48 << 48) | (int(INJECTED_MARK, 16) << 16) | BUG_KINDS.index(bug)
    # Version 8 (bits 76-79) and the RFC variant (bits 62-63), set by hand: uuid.UUID
    # takes versions 1 to 5 only before Python 3.14.
    number = (number & ~(0xF << 76)) | (8 << 76)
    number = (number & ~(0x3 << 62)) | (0x2 << 62)
    return str(uuid.UUID(int=number))


def injected_bug(meta_id: object) -> str | None:
    """The bug a meta.id labels (see :func:`injected_id`), or None for any other id."""
    match = _INJECTED.fullmatch(meta_id) if isinstance(meta_id, str) else None
    if match is None:
        return None
    number = int(match.group(1), 16)
    return BUG_KINDS[number] if number < len(BUG_KINDS) else None


#: Attributes never removed by missing_attribute (sampling units and the ones the
#: instruments pick events by).
_KEEP = {"performer_session_id", "performer_pageview_id"}


@dataclass
class Injected:
    """One manifest entry."""

    bug: str
    meta_id: str
    stream: str
    description: str
    #: which copy of the event carries the bug (2: the duplicate's second send)
    copy: int = 1
    finding: str | None = None
    validation: dict[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Bugs:
    """Which bugs are still to inject (each once), and the manifest of those injected."""

    pending: list[str] = field(default_factory=lambda: list(BUG_KINDS))
    manifest: list[Injected] = field(default_factory=list)
    #: Draws the unlabelled part of the injected events' meta.ids (seeded: the same run,
    #: the same ids).
    rng: random.Random = field(default_factory=random.Random)

    def _take(self, bug: str, item: Item, description: str, copy_no: int = 1) -> None:
        self.pending.remove(bug)
        item.bugged = bug
        self._label(item, bug)
        self.manifest.append(
            Injected(
                bug=bug,
                meta_id=item.event["meta"]["id"],
                stream=item.stream,
                description=description,
                copy=copy_no,
                finding=EXPECTED_FINDING.get(bug),
                validation=EXPECTED_VALIDATION.get(bug),
            )
        )

    def _label(self, item: Item, bug: str) -> None:
        """Give the bug's event a meta.id that says which bug it carries."""
        meta = item.event.get("meta")
        if isinstance(meta, dict) and injected_bug(meta.get("id")) != bug:
            meta["id"] = injected_id(bug, self.rng.getrandbits(128))

    def wants(self, bug: str) -> bool:
        return bug in self.pending

    @staticmethod
    def free(item: Item) -> bool:
        return item.bugged is None

    # --- the hooks the planner calls -------------------------------------------------

    def out_of_sample(self, item: Item) -> bool:
        """An event the client sampled out: send it anyway? (once)"""
        if not self.wants("out_of_sample"):
            return False
        self._take("out_of_sample", item, "sent although out of sample at the stream's rate")
        return True

    def missing_attribute(self, item: Item, requested: list[str]) -> bool:
        if not self.wants("missing_attribute") or not self.free(item):
            return False
        for name in requested:
            if name in _KEEP or name in attrs.NULLABLE_ATTRIBUTES:
                continue
            path = attrs.attribute_path(name)
            parent = item.event.get(path[0]) if len(path) == 2 else None
            if isinstance(parent, dict) and path[1] in parent:
                del parent[path[1]]
                self._take("missing_attribute", item, f"requested attribute {name} left out")
                return True
        return False

    def click(self, item: Item) -> list[Item]:
        """A plain (non-funnel, non-experiment) browser event: bad dt, invalid field or a
        duplicate; returns the extra items to send later (the duplicate's copy)."""
        if not self.free(item):
            return []
        if self.wants("bad_dt"):
            item.bad_dt = True
            self._take("bad_dt", item, "dt in whole seconds from a browser")
            return []
        page = item.event.get("page")
        if self.wants("invalid_field") and isinstance(page, dict) and "namespace_id" in page:
            page["namespace_id"] = str(page["namespace_id"])
            self._take("invalid_field", item, "page.namespace_id sent as a string")
            return []
        if self.wants("duplicate"):
            self._label(item, "duplicate")  # both copies: the same meta.id is the mistake
            twin = Item(copy.deepcopy(item.event), item.stream, dt_after=item)
            self._take("duplicate", twin, "the same event (same meta.id) sent twice", 2)
            item.bugged = "duplicate"
            return [twin]
        return []

    def wrong_group(self, item: Item, groups: tuple[str, ...]) -> bool:
        if not self.wants("wrong_group") or not self.free(item) or len(groups) < 2:
            return False
        block = item.event["experiment"]
        block["assigned"] = next(g for g in groups if g != block["assigned"])
        self._take("wrong_group", item, f"claims group {block['assigned']!r}, not its own")
        return True

    def funnel_disorder(self, steps: list[Item]) -> bool:
        """Steps 1..3 of an attempt: stamp step 3 before step 2."""
        if not self.wants("funnel_disorder") or len(steps) != 3:
            return False
        steps[2].dt_before = steps[1]
        self._take("funnel_disorder", steps[2], "funnel step 3 stamped before step 2")
        return True
