"""Contextual attributes: what a stream asks clients to add, and curation rules (PLATFORM.md §4).

An attribute name maps to an event path by splitting at the first ``_``:
``performer_session_id`` -> ``performer.session_id``. Clients always add
``agent_client_platform`` and ``agent_client_platform_family``; they omit null values
rather than sending null.

Known attribute names are the union of what the clients can send, from:
- ``php/src/StreamConfig/data/metrics_platform_client.schema.json`` (the config schema's enum),
- the Java/Android client's ``context/ContextValue.java`` (the ``agent_app_*``,
  ``agent_device_*``, ``agent_release_status`` and ``performer_language_*`` names),
- Test Kitchen's ``ContextualAttributesFactory.js`` and its devserver seed (``agent_ua_string``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

ALWAYS_SENT: frozenset[str] = frozenset({"agent_client_platform", "agent_client_platform_family"})

WEB_ATTRIBUTES: tuple[str, ...] = (
    "agent_client_platform",
    "agent_client_platform_family",
    "page_id",
    "page_title",
    "page_namespace_id",
    "page_namespace_name",
    "page_revision_id",
    "page_wikidata_id",
    "page_wikidata_qid",
    "page_content_language",
    "page_is_redirect",
    "page_user_groups_allowed_to_move",
    "page_user_groups_allowed_to_edit",
    "mediawiki_skin",
    "mediawiki_version",
    "mediawiki_is_production",
    "mediawiki_is_debug_mode",
    "mediawiki_database",
    "mediawiki_site_content_language",
    "mediawiki_site_content_language_variant",
    "performer_is_logged_in",
    "performer_id",
    "performer_name",
    "performer_session_id",
    "performer_pageview_id",
    "performer_groups",
    "performer_is_bot",
    "performer_is_temp",
    "performer_language",
    "performer_language_variant",
    "performer_can_probably_edit_page",
    "performer_edit_count",
    "performer_edit_count_bucket",
    "performer_registration_dt",
)
APP_ATTRIBUTES: tuple[str, ...] = (
    "agent_app_install_id",
    "agent_app_flavor",
    "agent_app_theme",
    "agent_app_version",
    "agent_app_version_name",
    "agent_device_family",
    "agent_device_language",
    "agent_release_status",
    "performer_language_groups",
    "performer_language_primary",
)
TEST_KITCHEN_ATTRIBUTES: tuple[str, ...] = ("agent_ua_string",)

#: Every contextual attribute name a Metrics Platform client can send.
KNOWN_ATTRIBUTES: frozenset[str] = frozenset(
    WEB_ATTRIBUTES + APP_ATTRIBUTES + TEST_KITCHEN_ATTRIBUTES
)

#: Attributes a client legitimately leaves out (null is omitted): logged-out performers
#: have no name, edit count or registration; wikis without variants have no variant;
#: pages without a Wikidata item have no QID; special pages have no restrictions.
NULLABLE_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "performer_name",
        "performer_edit_count",
        "performer_edit_count_bucket",
        "performer_registration_dt",
        "performer_is_temp",
        "performer_language_variant",
        "mediawiki_site_content_language_variant",
        "page_wikidata_id",
        "page_wikidata_qid",
        "page_user_groups_allowed_to_move",
        "page_user_groups_allowed_to_edit",
        "performer_language_groups",
        "performer_language_primary",
    }
)

#: Test Kitchen adds these to every exposure event (``Experiment.js``).
EXPOSURE_ATTRIBUTES: tuple[str, ...] = (
    "performer_is_logged_in",
    "performer_is_temp",
    "performer_is_bot",
    "mediawiki_database",
)

CURATION_RULES: tuple[str, ...] = (
    "equals",
    "not_equals",
    "in",
    "not_in",
    "greater_than",
    "less_than",
    "greater_than_or_equals",
    "less_than_or_equals",
    "contains",
    "does_not_contain",
    "contains_all",
    "contains_any",
)

_MISSING = object()


def attribute_path(name: str) -> tuple[str, ...]:
    """``performer_session_id`` -> ``("performer", "session_id")``; no ``_`` -> ``(name,)``."""
    head, sep, tail = name.partition("_")
    return (head, tail) if sep and head and tail else (name,)


def attribute_dotted(name: str) -> str:
    return ".".join(attribute_path(name))


def attribute_value(event: dict[str, Any], name: str) -> Any:
    """The attribute's value in the event, or the module's sentinel when absent."""
    node: Any = event
    for part in attribute_path(name):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def is_present(event: dict[str, Any], name: str) -> bool:
    """True when the event carries the attribute with a non-null value."""
    value = attribute_value(event, name)
    return value is not _MISSING and value is not None


def is_null(event: dict[str, Any], name: str) -> bool:
    """True when the event carries the attribute as an explicit null."""
    return attribute_value(event, name) is None


def _client_config(config: dict[str, Any] | None) -> dict[str, Any]:
    if not isinstance(config, dict):
        return {}
    producers = config.get("producers")
    if not isinstance(producers, dict):
        return {}
    mpc = producers.get("metrics_platform_client")
    return mpc if isinstance(mpc, dict) else {}


def requested_attributes(config: dict[str, Any] | None) -> list[str]:
    """The stream's ``producers.metrics_platform_client.provide_values`` (strings only)."""
    values = _client_config(config).get("provide_values")
    if not isinstance(values, list):
        return []
    return [v for v in values if isinstance(v, str)]


def curation_config(config: dict[str, Any] | None) -> dict[str, Any]:
    curation = _client_config(config).get("curation")
    return curation if isinstance(curation, dict) else {}


def missing_requested(
    event: dict[str, Any], config: dict[str, Any] | None, *, extra: tuple[str, ...] = ()
) -> list[str]:
    """Requested attributes (``provide_values`` plus ``extra``) the event lacks or has as null."""
    wanted = dict.fromkeys([*requested_attributes(config), *extra])
    return [name for name in wanted if not is_present(event, name)]


def unrequested_present(
    event: dict[str, Any], config: dict[str, Any] | None, *, extra: tuple[str, ...] = ()
) -> list[str]:
    """Known contextual attributes present (non-null) that nobody requested.

    ``agent_client_platform`` and ``agent_client_platform_family`` are always allowed.
    """
    allowed = set(requested_attributes(config)) | set(extra) | ALWAYS_SENT
    return sorted(
        name for name in KNOWN_ATTRIBUTES if name not in allowed and is_present(event, name)
    )


def null_attributes(event: dict[str, Any]) -> list[str]:
    """Known attributes present with an explicit null (clients omit nulls instead)."""
    return sorted(name for name in KNOWN_ATTRIBUTES if is_null(event, name))


# --- curation -------------------------------------------------------------------------


@dataclass(frozen=True)
class CurationFailure:
    attribute: str
    path: str
    rule: str
    operand: Any
    value: Any
    reason: str

    def as_facts(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "path": self.path,
            "rule": self.rule,
            "operand": self.operand,
            "value": self.value,
            "reason": self.reason,
        }


def _strict_equal(a: Any, b: Any) -> bool:
    """JavaScript ``===`` for JSON values: no bool/number mixing, numbers by value."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b and not (isinstance(a, float) and math.isnan(a))
    if type(a) is not type(b):
        return False
    # arrays and objects compare by identity in JS: two JSON values are never ===
    return isinstance(a, str) and a == b


def _index_of(container: Any, item: Any) -> int:
    """``container.indexOf(item)`` for a string or an array; raises TypeError otherwise."""
    if isinstance(container, str):
        if not isinstance(item, str):
            item = _js_string(item)
        return container.find(item)
    if isinstance(container, list):
        for i, element in enumerate(container):
            if _strict_equal(element, item):
                return i
        return -1
    raise TypeError(f"{type(container).__name__} has no indexOf")


def _js_string(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _compare(value: Any, operand: Any) -> float | None:
    """value - operand as a sign, for numbers or two strings; None when incomparable."""
    if isinstance(value, bool) or isinstance(operand, bool):
        return None
    if isinstance(value, int | float) and isinstance(operand, int | float):
        return (value > operand) - (value < operand)
    if isinstance(value, str) and isinstance(operand, str):
        return (value > operand) - (value < operand)
    return None


def rule_passes(value: Any, rule: str, operand: Any) -> tuple[bool, str]:
    """(passes, reason) for one curation rule applied to a non-null value."""
    try:
        if rule == "equals":
            return _strict_equal(value, operand), "not equal"
        if rule == "not_equals":
            return not _strict_equal(value, operand), "equal"
        if rule in ("in", "not_in"):
            if not isinstance(operand, list):
                return False, "operand is not a list"
            found = any(_strict_equal(value, x) for x in operand)
            return (found, "not in the list") if rule == "in" else (not found, "in the list")
        if rule in ("greater_than", "less_than", "greater_than_or_equals", "less_than_or_equals"):
            sign = _compare(value, operand)
            if sign is None:
                return False, "value and operand are not comparable"
            ok = {
                "greater_than": sign > 0,
                "less_than": sign < 0,
                "greater_than_or_equals": sign >= 0,
                "less_than_or_equals": sign <= 0,
            }[rule]
            return ok, f"not {rule.replace('_', ' ')}"
        if rule == "contains":
            return _index_of(value, operand) > -1, "does not contain"
        if rule == "does_not_contain":
            return _index_of(value, operand) == -1, "contains"
        if rule in ("contains_all", "contains_any"):
            if not isinstance(operand, list):
                return False, "operand is not a list"
            hits = [_index_of(value, x) > -1 for x in operand]
            if rule == "contains_all":
                return all(hits), "does not contain all"
            return any(hits), "contains none"
    except TypeError as exc:
        return False, f"rule cannot apply to this value ({exc})"
    return False, "unknown rule (clients ignore it; the config schema rejects it)"


def curation_failures(
    event: dict[str, Any], config: dict[str, Any] | None
) -> list[CurationFailure]:
    """Every curation rule of the stream that fails for the event.

    All rules must pass; a missing or null value fails every rule of its attribute.
    """
    failures: list[CurationFailure] = []
    for attribute, rules in curation_config(config).items():
        path = attribute_dotted(attribute)
        value = attribute_value(event, attribute)
        if not isinstance(rules, dict):
            failures.append(
                CurationFailure(attribute, path, "", rules, None, "rules are not an object")
            )
            continue
        if value is _MISSING or value is None:
            for rule, operand in rules.items():
                failures.append(
                    CurationFailure(
                        attribute, path, rule, operand, None, "value is missing or null"
                    )
                )
            continue
        for rule, operand in rules.items():
            ok, reason = rule_passes(value, rule, operand)
            if not ok:
                failures.append(CurationFailure(attribute, path, rule, operand, value, reason))
    return failures
