"""Simulated people and devices, with identifiers from a seeded RNG (PLATFORM.md §6)."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

#: Apps start a new session after 30 minutes in the background.
APP_SESSION_TIMEOUT_S = 30 * 60

PAGES: tuple[dict, ...] = (
    {"id": 30715282, "title": "Dark_Souls", "revision_id": 1084793259},
    {"id": 15580374, "title": "Main_Page", "revision_id": 1245000001},
    {"id": 736, "title": "Albert_Einstein", "revision_id": 1250012345},
    {"id": 18630637, "title": "Translation", "revision_id": 1249870001},
    {"id": 9316, "title": "Earth", "revision_id": 1251234567},
    {"id": 25202, "title": "Quantum_mechanics", "revision_id": 1248765432},
)
WIKIS: tuple[tuple[str, str, str], ...] = (
    ("enwiki", "en.wikipedia.org", "en"),
    ("dewiki", "de.wikipedia.org", "de"),
    ("frwiki", "fr.wikipedia.org", "fr"),
)
EDIT_BUCKETS = ("0 edits", "1-4 edits", "5-99 edits", "100-999 edits", "1000+ edits")


def hex20(rng: random.Random) -> str:
    """A web session or pageview id: 20 lowercase hex characters (80 random bits)."""
    return f"{rng.getrandbits(80):020x}"


def uuid4(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (app install ids, meta.id)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def ios_id(rng: random.Random) -> str:
    """The iOS app's 20 hex characters, built from 5 groups of 4."""
    return "".join(f"{rng.getrandbits(16):04x}" for _ in range(5))


def format_dt(epoch: float, *, whole_seconds: bool = False) -> str:
    """ISO-8601 UTC with milliseconds and Z (JS, iOS); whole seconds for Java/Android."""
    moment = datetime.fromtimestamp(epoch, UTC)
    if whole_seconds:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class WebUser:
    """A browser: one session cookie (``mwuser-sessionId``), a wiki, maybe an account."""

    index: int
    rng: random.Random
    session_id: str
    database: str
    domain: str
    language: str
    central_user_id: int | None
    edit_count_bucket: str | None

    @property
    def logged_in(self) -> bool:
        return self.central_user_id is not None

    @classmethod
    def create(cls, index: int, rng: random.Random) -> WebUser:
        database, domain, language = rng.choice(WIKIS)
        logged_in = rng.random() < 0.5
        return cls(
            index=index,
            rng=rng,
            session_id=hex20(rng),
            database=database,
            domain=domain,
            language=language,
            central_user_id=rng.randrange(1, 50_000_000) if logged_in else None,
            edit_count_bucket=rng.choice(EDIT_BUCKETS) if logged_in else None,
        )


@dataclass
class AppDevice:
    """An Android or iOS app install: a UUID install id and sessions that rotate after 30
    minutes in the background (on the simulated clock ``now``)."""

    index: int
    rng: random.Random
    platform: str  # android | ios
    install_id: str
    database: str
    domain: str
    session_id: str = ""
    last_active: float | None = None
    sessions: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, index: int, rng: random.Random, platform: str) -> AppDevice:
        database, domain, _ = rng.choice(WIKIS)
        return cls(index, rng, platform, uuid4(rng), database, domain)

    def new_id(self) -> str:
        return ios_id(self.rng) if self.platform == "ios" else hex20(self.rng)

    def session_at(self, now: float) -> str:
        """The session id for activity at ``now``: a new one on first use and after more
        than 30 minutes without activity."""
        if self.last_active is None or now - self.last_active > APP_SESSION_TIMEOUT_S:
            self.session_id = self.new_id()
            self.sessions.append(self.session_id)
        self.last_active = now
        return self.session_id
