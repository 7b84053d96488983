"""Realistic web/base 1.3.0 events, as the MediaWiki JS client sends them.

The benchmarks' disk and throughput figures depend on what an event looks like: a tiny
recorded event compresses and indexes unlike the ~1.5 kB events a real instrument sends
(page, performer, MediaWiki and experiment context filled in by the client library). These
events carry every contextual attribute the JS client can add, with ids that vary the way
real ones do (a session per 40 events, a pageview per 8, a random token per event), so
neither compression nor the indexes see unrealistically repetitive data.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from typing import Any

SCHEMA = "/analytics/product_metrics/web/base/1.3.0"
STREAM = "product_metrics.web_base"
_ID_CHARS = string.digits + string.ascii_lowercase
_TITLES = ("Main_Page", "Albert_Einstein", "Special:Search", "Wikipedia:Village_pump", "Rome")
_ACTIONS = ("click", "init", "hover", "scroll", "submit", "impression")
_SKINS = ("vector-2022", "minerva", "timeless")


def _token(rng: random.Random, n: int = 20) -> str:
    return "".join(rng.choices(_ID_CHARS, k=n))


def web_base_event(rng: random.Random, i: int, session: str, pageview: str) -> dict[str, Any]:
    """One event, the ``i``-th of a run; about 1,460 bytes as compact JSON."""
    title = _TITLES[i % len(_TITLES)]
    logged_in = i % 3 == 0
    second, milli = divmod(i, 1000)
    dt = f"2026-12-01T{(second // 3600) % 24:02d}:{(second // 60) % 60:02d}:{second % 60:02d}.{milli:03d}Z"
    return {
        "$schema": SCHEMA,
        "dt": dt,
        "meta": {"stream": STREAM, "domain": "en.wikipedia.org", "dt": dt},
        "action": _ACTIONS[i % len(_ACTIONS)],
        "action_source": "toc",
        "action_context": f'{{"section":"{rng.randrange(1, 40)}","depth":{rng.randrange(1, 4)}}}',
        "element_id": f"toc-section-{rng.randrange(1, 40)}",
        "element_friendly_name": "TOC section",
        "instrument_name": "TableOfContentsInteraction",
        "funnel_entry_token": _token(rng),
        "funnel_name": "toc_navigation",
        "funnel_event_sequence_position": i % 8 + 1,
        "agent": {
            "client_platform": "mediawiki_js",
            "client_platform_family": "desktop_browser",
            "release_status": "prod",
        },
        "page": {
            "id": rng.randrange(1, 70_000_000),
            "title": title,
            "namespace_id": 0,
            "namespace_name": "",
            "revision_id": rng.randrange(1_000_000_000, 1_300_000_000),
            "wikidata_qid": f"Q{rng.randrange(1, 120_000_000)}",
            "content_language": "en",
            "is_redirect": False,
            "user_groups_allowed_to_edit": ["*"],
            "user_groups_allowed_to_move": ["autoconfirmed"],
        },
        "mediawiki": {
            "skin": _SKINS[i % len(_SKINS)],
            "version": "1.44.0-wmf.5",
            "site_content_language": "en",
            "database": "enwiki",
        },
        "performer": {
            "is_logged_in": logged_in,
            "id": rng.randrange(1, 50_000_000) if logged_in else 0,
            "name": f"Example user {rng.randrange(1, 100_000)}" if logged_in else "",
            "session_id": session,
            "active_browsing_session_token": session[::-1],
            "pageview_id": pageview,
            "groups": ["*", "user", "autoconfirmed"] if logged_in else ["*"],
            "is_bot": False,
            "is_temp": False,
            "language": "en",
            "can_probably_edit_page": True,
            "edit_count_bucket": "5-99 edits" if logged_in else "0 edits",
            "registration_dt": "2019-05-04T10:11:12Z" if logged_in else None,
        },
        "experiments": {
            "enrolled": ["toc-pinned", "sticky-header"],
            "assigned": {"toc-pinned": "treatment", "sticky-header": "control"},
        },
        "sample": {"rate": 1, "unit": "session"},
    }


def web_base_events(n: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """``n`` events: a session every 40, a pageview every 8."""
    rng = random.Random(seed)
    session = pageview = ""
    for i in range(n):
        if i % 40 == 0:
            session = _token(rng)
        if i % 8 == 0:
            pageview = _token(rng)
        event = web_base_event(rng, i, session, pageview)
        if event["performer"]["registration_dt"] is None:
            del event["performer"]["registration_dt"]
        yield event
