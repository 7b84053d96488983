"""What each simulated user does, driven by the instrument definitions.

Each definition is read for its stream, its experiment and its expectations, and played
the way its kind of instrument fires:

- an experiment instrument (``experiment:``): enrolled users send the exposure once per
  pageview (Test Kitchen, an array of one) and, on some pageviews, a conversion after it;
- a funnel (expectations with ``funnel:``): an attempt sends steps 1..k in order (the JS
  library, in the page's queue); the first attempt of a run goes to the last step;
- once per pageview (``count`` at most one per pageview, e.g. an impression): EventLogging,
  one bare object;
- an app instrument (an ``app/`` schema): every app session sends each expectation once,
  in order (Android or iOS, ``application/json``);
- anything else (clicks): one or two expectations per pageview, the least-sent first, in
  the JS library's queue.

The interaction fields of each expectation (action, action_source, element_id, ...) are
taken from the first event of the definition's fixture that the expectation picks (else
from its ``equals``/``one_of`` constraints); the context (ids, page, performer, wiki) comes
from the simulated world, and contextual attributes are exactly what the stream's
``provide_values`` requests. Experiments in the experiments file that no definition covers
are played like the first experiment definition, with their own experiment block.

Every event is sampled with the stream's ``sample`` config exactly as its client does
(:mod:`decide`); out-of-sample events are counted and not sent.
"""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mpsandbox.instruments.definitions import Definition, Expectation
from mpsandbox.platform import attributes as attrs
from mpsandbox.platform.experiments import Experiment
from mpsandbox.platform.stream_configs import StreamConfigs
from mpsandbox.simulate import decide
from mpsandbox.simulate.bugs import Bugs
from mpsandbox.simulate.producers import PRODUCERS, Batch, Item
from mpsandbox.simulate.world import PAGES, AppDevice, WebUser, hex20, uuid4

INTERACTION_FIELDS = (
    "action",
    "action_source",
    "action_subtype",
    "action_context",
    "element_id",
    "element_friendly_name",
    "funnel_name",
    "funnel_event_sequence_position",
    "instrument_name",
)
#: What a web event carries when its stream has no provide_values.
DEFAULT_WEB_ATTRIBUTES = (
    "page_id",
    "page_title",
    "page_namespace_id",
    "page_revision_id",
    "mediawiki_skin",
    "mediawiki_database",
    "performer_is_logged_in",
    "performer_session_id",
    "performer_pageview_id",
)
APP_SESSION_GAP_S = 31 * 60  # a simulated background pause: the next session is new

#: After an interaction has been sent once, the share of pageviews that skip it.
CLICK_SKIP = 0.6


@dataclass
class Behaviour:
    definition: Definition
    kind: str  # experiment | funnel | per_pageview | app | clicks
    templates: dict[str, dict[str, Any]]

    @property
    def name(self) -> str:
        return self.definition.name


def _fixture_events(definition: Definition) -> list[dict]:
    path = definition.fixture
    if path is None or not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                out.append(value)
    return out


def _template(definition: Definition, x: Expectation, fixture: list[dict]) -> dict[str, Any]:
    for event in fixture:
        if x.picks(event):
            out = {k: event[k] for k in INTERACTION_FIELDS if k in event}
            out["$schema"] = event.get("$schema")
            return out
    out: dict[str, Any] = {}
    for name, c in [*x.identity, *definition.match]:
        if c.kind == "equals":
            out[name] = c.value
        elif c.kind == "one_of" and c.value:
            out[name] = c.value[0]
    if definition.schema is not None:
        out["$schema"] = f"/{definition.schema.title}/latest"
    return out


def classify(definition: Definition) -> Behaviour:
    fixture = _fixture_events(definition)
    templates = {x.id: _template(definition, x, fixture) for x in definition.expects}
    schema = definition.schema.title if definition.schema else ""
    if definition.experiment is not None:
        kind = "experiment"
    elif any(x.funnel is not None for x in definition.expects):
        kind = "funnel"
    elif "/app/" in f"/{schema}/" or any(
        (e.get("agent") or {}).get("client_platform_family") == "app" for e in fixture[:1]
    ):
        kind = "app"
    elif definition.expects and all(
        x.count is not None and x.count.per == "pageview" and x.count.max == 1
        for x in definition.expects
    ):
        kind = "per_pageview"
    else:
        kind = "clicks"
    return Behaviour(definition, kind, templates)


def _set(event: dict, path: tuple[str, ...], value: Any) -> None:
    node = event
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


@dataclass
class Stats:
    """What the plan decided: events sent per stream and not sent (out of sample)."""

    planned: Counter = field(default_factory=Counter)
    out_of_sample: Counter = field(default_factory=Counter)
    sent_by_expectation: Counter = field(default_factory=Counter)


class Planner:
    """Builds each user's script (a list of POSTs) from the definitions and configs."""

    def __init__(
        self,
        definitions: list[Definition],
        stream_configs: StreamConfigs | None,
        experiments: Mapping[str, Experiment] | None,
        *,
        seed: int = 0,
        bugs: Bugs | None = None,
    ) -> None:
        self.behaviours = [classify(d) for d in definitions]
        self.stream_configs = stream_configs
        self.experiments = dict(experiments or {})
        self.seed = seed
        self.bugs = bugs
        self.stats = Stats()
        self.funnels_completed: set[str] = set()
        # experiments: (experiment, behaviour that plays it)
        exp_behaviours = [b for b in self.behaviours if b.kind == "experiment"]
        self.experiment_plays: list[tuple[Experiment, Behaviour]] = []
        for experiment in self.experiments.values():
            own = [b for b in exp_behaviours if b.definition.experiment.name == experiment.name]
            played = own[0] if own else (exp_behaviours[0] if exp_behaviours else None)
            if played is not None:
                self.experiment_plays.append((experiment, played))
        self.web = [b for b in self.behaviours if b.kind in ("per_pageview", "clicks", "funnel")]
        self.apps = [b for b in self.behaviours if b.kind == "app"]

    # --- configs ---------------------------------------------------------------------------

    def config(self, stream: str) -> dict[str, Any] | None:
        return self.stream_configs.get(stream) if self.stream_configs is not None else None

    def requested(self, stream: str) -> list[str] | None:
        config = self.config(stream)
        mpc = (((config or {}).get("producers") or {}).get("metrics_platform_client")) or {}
        values = mpc.get("provide_values") if isinstance(mpc, dict) else None
        return [v for v in values if isinstance(v, str)] if isinstance(values, list) else None

    # --- scripts -------------------------------------------------------------------------

    def script(self, index: int) -> list[Batch]:
        """User ``index``'s POSTs, in order. Every fifth user is an app install."""
        rng = random.Random(f"{self.seed}:{index}")
        if index % 5 == 4 and self.apps:
            platform = "ios" if index % 15 == 14 else "android"
            return self._app_script(AppDevice.create(index, rng, platform))
        if not self.web and not self.experiment_plays:
            return self._app_script(AppDevice.create(index, rng, "android")) if self.apps else []
        return self._web_script(WebUser.create(index, rng))

    def _keep(self, item: Item, family: decide.Family, *, bug_ok: bool = False) -> bool:
        """Sample ``item`` as its client does; a sampled-out item may become a bug."""
        if decide.event_in_sample(item.event, self.config(item.stream), family):
            self.stats.planned[item.stream] += 1
            return True
        self.stats.out_of_sample[item.stream] += 1
        if bug_ok and self.bugs is not None and self.bugs.out_of_sample(item):
            self.stats.planned[item.stream] += 1
            return True
        return False

    def _web_event(
        self,
        user: WebUser,
        template: dict[str, Any],
        stream: str,
        page: dict,
        pageview_id: str,
        *,
        extra: tuple[str, ...] = (),
        producer: str = "js",
    ) -> Item:
        event: dict[str, Any] = {
            "$schema": template.get("$schema"),
            "meta": {"stream": stream, "domain": user.domain, "id": uuid4(user.rng)},
        }
        for k, v in template.items():
            if k != "$schema":
                event[k] = copy.deepcopy(v)
        event["agent"] = {
            "client_platform": "mediawiki_js",
            "client_platform_family": "desktop_browser",
        }
        context = {
            "page_id": page["id"],
            "page_title": page["title"],
            "page_namespace_id": 0,
            "page_namespace_name": "",
            "page_revision_id": page["revision_id"],
            "page_content_language": user.language,
            "mediawiki_skin": "vector-2022",
            "mediawiki_database": user.database,
            "mediawiki_version": "1.46.0-wmf.4",
            "performer_is_logged_in": user.logged_in,
            "performer_is_bot": False,
            "performer_session_id": user.session_id,
            "performer_pageview_id": pageview_id,
            "performer_edit_count_bucket": user.edit_count_bucket,
        }
        wanted = self.requested(stream)
        names = list(wanted if wanted is not None else DEFAULT_WEB_ATTRIBUTES) + list(extra)
        for name in dict.fromkeys(names):
            value = context.get(name)
            if value is not None:
                _set(event, attrs.attribute_path(name), value)
        config = self.config(stream)
        if producer == "js" and isinstance(config, dict) and isinstance(config.get("sample"), dict):
            event["sample"] = dict(config["sample"])  # the JS library copies it
        return Item(event, stream)

    def _web_script(self, user: WebUser) -> list[Batch]:
        rng = user.rng
        out: list[Batch] = []
        enrolled: list[tuple[Experiment, Behaviour, str, str]] = []
        for experiment, behaviour in self.experiment_plays:
            ok, group, subject = decide.enroll(
                experiment, rng=rng, central_user_id=user.central_user_id, wiki=user.database
            )
            if ok and group and subject:
                enrolled.append((experiment, behaviour, group, subject))
        for _ in range(rng.randint(1, 3)):
            page = rng.choice(PAGES)
            pageview_id = hex20(rng)
            # once per pageview (EventLogging)
            for b in self.web:
                if b.kind != "per_pageview":
                    continue
                for x in b.definition.expects:
                    item = self._web_event(
                        user,
                        b.templates[x.id],
                        b.definition.stream,
                        page,
                        pageview_id,
                        producer="eventlogging",
                    )
                    if self._keep(item, "web", bug_ok=True):
                        requested = self.requested(item.stream) or []
                        if self.bugs is not None and item.bugged is None:
                            self.bugs.missing_attribute(item, requested)
                        self._count(b, x)
                        out.append(Batch(PRODUCERS["eventlogging"], [item]))
            # exposures (Test Kitchen)
            exposed = []
            for experiment, b, group, subject in enrolled:
                exposure = next(
                    (x for x in b.definition.expects if x.action.value == "experiment_exposure"),
                    None,
                )
                if exposure is None:
                    continue
                item = self._experiment_event(
                    user, b, exposure, experiment, group, subject, page, pageview_id, exposure=True
                )
                if self._keep(item, "web"):
                    if self.bugs is not None and experiment.sampling_unit == "mw-user":
                        self.bugs.wrong_group(item, experiment.groups)
                    self._count(b, exposure)
                    out.append(Batch(PRODUCERS["testkitchen"], [item]))
                    exposed.append((experiment, b, group, subject))
            # the JS library's queue: clicks and a funnel attempt
            queue: list[Item] = []
            later: list[Item] = []
            for b in self.web:
                if b.kind == "clicks" and b.definition.expects:
                    ranked = sorted(
                        b.definition.expects,
                        key=lambda x: (
                            self.stats.sent_by_expectation[(b.name, x.id)],
                            rng.random(),
                        ),
                    )
                    for x in ranked[: rng.randint(1, 2)]:
                        # Once covered, an interaction happens on some pageviews only, so
                        # the demo's rates look like real ones (not every view clicks).
                        seen = self.stats.sent_by_expectation[(b.name, x.id)]
                        if seen and not x.action.test(True, "init") and rng.random() < CLICK_SKIP:
                            continue
                        item = self._web_event(
                            user, b.templates[x.id], b.definition.stream, page, pageview_id
                        )
                        if self._keep(item, "web"):
                            self._count(b, x)
                            queue.append(item)
                            if self.bugs is not None:
                                later += self.bugs.click(item)
                elif b.kind == "funnel" and (
                    b.name not in self.funnels_completed or rng.random() < 0.5
                ):
                    queue += self._funnel(user, b, page, pageview_id)
            if queue:
                out.append(Batch(PRODUCERS["js"], queue))
            for twin in later:
                out.append(Batch(PRODUCERS["js"], [twin]))
            # conversions after the exposure (Test Kitchen)
            for experiment, b, group, subject in exposed:
                first = not self.stats.sent_by_expectation[(b.name, experiment.name, "conversion")]
                if not (first or rng.random() < 0.5):
                    continue
                for x in b.definition.expects:
                    if x.after is None:
                        continue
                    item = self._experiment_event(
                        user, b, x, experiment, group, subject, page, pageview_id
                    )
                    if self._keep(item, "web"):
                        self._count(b, x)
                        self.stats.sent_by_expectation[(b.name, experiment.name, "conversion")] += 1
                        out.append(Batch(PRODUCERS["testkitchen"], [item]))
        return out

    def _experiment_event(
        self,
        user: WebUser,
        b: Behaviour,
        x: Expectation,
        experiment: Experiment,
        group: str,
        subject: str,
        page: dict,
        pageview_id: str,
        *,
        exposure: bool = False,
    ) -> Item:
        template = dict(b.templates[x.id])
        if experiment.schema:
            template["$schema"] = experiment.schema
        stream = experiment.stream or b.definition.stream
        extra = tuple(experiment.contextual_attributes)
        if exposure:
            extra += attrs.EXPOSURE_ATTRIBUTES
        item = self._web_event(
            user, template, stream, page, pageview_id, extra=extra, producer="testkitchen"
        )
        item.event["experiment"] = {
            "enrolled": experiment.name,
            "assigned": group,
            "subject_id": subject,
            "sampling_unit": experiment.sampling_unit,
            "coordinator": "default",
        }
        return item

    def _funnel(self, user: WebUser, b: Behaviour, page: dict, pageview_id: str) -> list[Item]:
        rng = user.rng
        steps = sorted((x for x in b.definition.expects if x.funnel), key=lambda x: x.funnel.step)
        if not steps:
            return []
        full = b.name not in self.funnels_completed
        reach = len(steps) if full else rng.randint(1, len(steps))
        if self.bugs is not None and self.bugs.wants("funnel_disorder") and not full and reach >= 3:
            reach = 3
        token = hex20(rng)
        items = []
        for x in steps[:reach]:
            item = self._web_event(user, b.templates[x.id], b.definition.stream, page, pageview_id)
            item.event["funnel_entry_token"] = token
            item.event["funnel_event_sequence_position"] = x.funnel.step
            items.append(item)
        kept = [i for i in items if self._keep(i, "web")]
        if len(kept) != len(items):  # sampled out (the session or pageview): none is sent
            return []
        for x in steps[:reach]:
            self._count(b, x)
        if full:
            self.funnels_completed.add(b.name)
        elif self.bugs is not None and reach == 3:
            self.bugs.funnel_disorder(kept)
        return kept

    def _app_script(self, device: AppDevice) -> list[Batch]:
        import time

        rng = device.rng
        producer = PRODUCERS[device.platform]
        clock = time.time()
        out = []
        for _ in range(rng.randint(1, 2)):
            session = device.session_at(clock)
            items = []
            for b in self.apps:
                for x in b.definition.expects:
                    items.append(self._app_event(device, b, x, session))
            kept = [i for i in items if self._keep(i, "app")]
            for b in self.apps:
                for x in b.definition.expects:
                    if kept:
                        self._count(b, x)
            for start in range(0, len(kept), 10):  # the Java client's queue of 10
                out.append(Batch(producer, kept[start : start + 10]))
            clock += APP_SESSION_GAP_S
        return out

    def _app_event(self, device: AppDevice, b: Behaviour, x: Expectation, session: str) -> Item:
        rng = device.rng
        template = b.templates[x.id]
        stream = b.definition.stream
        event: dict[str, Any] = {
            "$schema": template.get("$schema"),
            "meta": {"stream": stream, "domain": device.domain, "id": uuid4(rng)},
        }
        for k, v in template.items():
            if k != "$schema":
                event[k] = copy.deepcopy(v)
        ios = device.platform == "ios"
        event["agent"] = {
            "app_flavor": "prod",
            "app_install_id": device.install_id,
            "app_theme": rng.choice(["LIGHT", "DARK"]),
            "app_version": 770 if ios else 50470,
            "app_version_name": "7.7.1" if ios else "2.7.50470-r-2026-02-27",
            "client_platform": device.platform,
            "client_platform_family": "app",
            "device_family": "iPhone" if ios else "samsung",
            "device_language": "en",
            "release_status": "prod",
        }
        event["mediawiki"] = {"database": device.database}
        event["performer"] = {
            "is_logged_in": False,
            "session_id": session,
            "pageview_id": device.new_id(),
        }
        if any(p.startswith("page.") for p in x.required):
            page = rng.choice(PAGES)
            event["page"] = {
                "id": page["id"],
                "title": page["title"],
                "namespace_id": 0,
                "revision_id": page["revision_id"],
            }
        return Item(event, stream)

    def _count(self, b: Behaviour, x: Expectation) -> None:
        self.stats.sent_by_expectation[(b.name, x.id)] += 1
