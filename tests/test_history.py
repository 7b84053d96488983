"""Stateful findings: duplicates, funnels by dt, app sessions, repeated exposures."""

from __future__ import annotations

from mpsandbox.platform.history import History, dt_gaps, funnel_steps, session_funnels


def ev(**fields):
    base = {"meta": {"stream": "s"}, "action": "click"}
    base.update(fields)
    return base


def kinds(findings):
    return [f.kind for f in findings]


def test_duplicate_meta_id_and_identical_events():
    h = History()
    a = ev(meta={"id": "x", "stream": "s"}, dt="2024-10-01T12:00:00.000Z")
    assert h.observe(a, received_at=1, ref=1) == []
    again = h.observe(dict(a), received_at=2, ref=2)
    assert set(kinds(again)) == {"duplicate.meta_id", "duplicate.event"}
    assert again[0].facts["first"] == 1
    other = ev(meta={"id": "x", "stream": "s"}, dt="2024-10-01T12:00:01.000Z")
    assert kinds(h.observe(other, received_at=3)) == ["duplicate.meta_id"]


def step(pos, second, token="t1", instrument="i"):
    return ev(
        funnel_event_sequence_position=pos,
        funnel_entry_token=token,
        instrument_name=instrument,
        dt=f"2024-10-01T12:00:{second:02d}.000Z",
    )


def test_funnels_are_judged_by_dt_not_arrival():
    h = History()
    # Steps 1, 3, 2 by arrival, but 1, 2, 3 by dt: out-of-order beacons are fine...
    assert h.observe(step(1, 1), received_at=1) == []
    assert kinds(h.observe(step(3, 3), received_at=2)) == ["funnel.gap"]
    assert h.observe(step(2, 2), received_at=3) == []
    # ...a step whose dt puts it before a lower position is disorder; a repeat is a repeat.
    assert kinds(h.observe(step(5, 0, token="t2"), received_at=4)) == ["funnel.gap"]
    assert kinds(h.observe(step(4, 9, token="t2"), received_at=5)) == ["funnel.disorder"]
    assert kinds(h.observe(step(2, 4), received_at=6)) == ["funnel.repeat"]
    # Another token or instrument is another funnel.
    assert h.observe(step(1, 1, instrument="other"), received_at=7) == []


def test_whole_funnel_judgement():
    steps = funnel_steps([step(2, 2), step(1, 1), step(4, 4), step(4, 5), step(3, 6)])
    assert [s["position"] for s in steps] == [1, 2, 4, 4, 3]
    assert [s["problems"] for s in steps] == [[], [], ["gap"], ["repeat"], ["disorder"]]


def app_event(session, clock):
    return ev(
        agent={"client_platform": "android", "client_platform_family": "app"},
        performer={"session_id": session},
        dt=f"2024-10-01T{clock}Z",
    )


def test_app_sessions_that_outlive_thirty_minutes_are_flagged():
    h = History()
    assert h.observe(app_event("a" * 20, "12:00:00"), received_at=1) == []
    assert h.observe(app_event("a" * 20, "12:30:00"), received_at=2) == []  # exactly 30 min
    [f] = h.observe(app_event("a" * 20, "13:00:01"), received_at=3)
    assert f.kind == "session.inactive_kept_id" and f.facts["inactive_s"] == 30 * 60 + 1
    web = ev(
        agent={"client_platform": "mediawiki_js"},
        performer={"session_id": "b" * 20},
        dt="2024-10-01T12:00:00Z",
    )
    later = dict(web, dt="2024-10-01T14:00:00Z")
    assert h.observe(web, received_at=4) == [] and h.observe(later, received_at=5) == []


def test_repeated_exposures_in_one_pageview():
    h = History()
    exposure = ev(
        action="experiment_exposure",
        performer={"pageview_id": "p" * 20},
        experiment={"enrolled": "my-experiment", "assigned": "control"},
    )
    assert h.observe(exposure, received_at=1, ref=7) == []
    [f] = h.observe(dict(exposure, dt="2024-10-01T12:00:00Z"), received_at=2)
    assert f.kind == "experiment.repeated_exposure" and f.facts["first"] == 7


def test_memory_is_bounded():
    h = History(max_events=100, max_groups=10)
    for i in range(1000):
        h.observe(
            ev(
                meta={"id": str(i), "stream": "s"},
                funnel_entry_token=str(i),
                funnel_event_sequence_position=1,
                dt="2024-10-01T12:00:00Z",
            ),
            received_at=i,
        )
    assert len(h._meta_ids) == 100 and len(h._funnels) == 10


def test_every_stateful_kind_is_produced_by_these_tests():
    from mpsandbox.platform.findings import KINDS, STATEFUL_KINDS

    h = History()
    produced: set[str] = set()
    script = [
        ev(meta={"id": "m", "stream": "s"}),
        ev(meta={"id": "m", "stream": "s"}),
        step(1, 1),
        step(3, 3),
        step(3, 4),
        step(2, 0),
        app_event("c" * 20, "10:00:00"),
        app_event("c" * 20, "11:00:00"),
        ev(
            action="experiment_exposure",
            performer={"pageview_id": "q" * 20},
            experiment={"enrolled": "exp-name-1"},
        ),
        ev(
            action="experiment_exposure",
            performer={"pageview_id": "q" * 20},
            experiment={"enrolled": "exp-name-1"},
            dt="2024-10-01T12:00:00Z",
        ),
    ]
    for i, e in enumerate(script):
        for f in h.observe(e, received_at=i):
            produced.add(f.kind)
            assert f.severity == KINDS[f.kind].severity and "\n" not in f.message
    assert produced == set(STATEFUL_KINDS)


def test_session_funnels_group_by_instrument_and_token_and_judge_each_whole():
    def step(pos, second, token="t1", instrument="checkout"):
        return {
            "instrument_name": instrument,
            "funnel_entry_token": token,
            "funnel_event_sequence_position": pos,
            "dt": f"2024-10-01T12:00:{second:02d}Z",
        }

    events = [
        step(1, 0),
        step(3, 5),
        step(2, 9),  # by dt after 3: disorder
        step(1, 1, token="t2"),
        step(2, 2, token="t2"),
        {"action": "not a step"},
        step(1, 3, token="t2", instrument=""),  # no instrument: a funnel of its own
    ]
    funnels = session_funnels(events)
    assert [(f["instrument"], f["token"]) for f in funnels] == [
        ("checkout", "t1"),
        ("checkout", "t2"),
        ("", "t2"),
    ]
    first = funnels[0]
    assert [(s["position"], s["problems"]) for s in first["steps"]] == [
        (1, []),
        (3, ["gap"]),
        (2, ["disorder"]),
    ]
    assert first["problems"] == {"gap": 1, "disorder": 1}
    assert funnels[1]["problems"] == {} and funnels[2]["problems"] == {}
    assert first["steps"][1]["event"] is events[1]  # the caller's own dicts


def test_dt_gaps_skip_unparsable_timestamps():
    dts = ["2024-10-01T12:00:00Z", "2024-10-01T12:00:02.5Z", None, "bad", "2024-10-01T12:01:02.5Z"]
    assert dt_gaps(dts) == [None, 2.5, None, None, 60.0]
    assert dt_gaps([]) == []


def test_a_late_step_that_fills_a_gap_retracts_it():
    h = History()
    h.observe(step(1, 1), received_at=1, ref="one")
    assert kinds(h.observe(step(3, 3), received_at=2, ref="three")) == ["funnel.gap"]
    assert h.take_retractions() == []
    assert h.observe(step(2, 2), received_at=3, ref="two") == []
    assert h.take_retractions() == [("funnel.gap", "three")]
    assert h.take_retractions() == []  # taken once
    # A gap only partly filled stays.
    assert kinds(h.observe(step(6, 9, token="t3"), received_at=4, ref="six")) == ["funnel.gap"]
    h.observe(step(2, 1, token="t3"), received_at=5, ref="x")
    assert h.take_retractions() == []


def test_a_funnel_repeated_without_end_keeps_a_bounded_number_of_steps():
    """A client replaying one body (a load generator) repeats one entry token forever:
    the funnel is still judged, and remembers at most MAX_FUNNEL_STEPS steps."""
    from mpsandbox.platform.history import MAX_FUNNEL_STEPS

    h = History()
    assert h.observe(step(1, 1), received_at=0) == []
    for i in range(3 * MAX_FUNNEL_STEPS):
        assert "funnel.repeat" in kinds(h.observe(step(1, 1), received_at=i + 1))
    assert [len(steps) for steps in h._funnels.values()] == [MAX_FUNNEL_STEPS]
    assert kinds(h.observe(step(3, 2), received_at=10_000)) == ["funnel.gap"]


def test_a_step_forgotten_beyond_the_bound_no_longer_makes_its_position_a_repeat():
    """The earliest step (by dt) is forgotten once a funnel holds MAX_FUNNEL_STEPS: its
    position, held by no other step, is then a new step again, not a repeat."""
    from mpsandbox.platform.history import MAX_FUNNEL_STEPS

    for extra, expected in ((0, ["funnel.repeat"]), (1, [])):
        h = History()
        assert kinds(h.observe(step(2, 0), received_at=0)) == ["funnel.gap"]
        for i in range(MAX_FUNNEL_STEPS - 1 + extra):  # the last one forgets step 2
            h.observe(step(1, 1), received_at=i + 1)
        assert kinds(h.observe(step(2, 5), received_at=1_000)) == expected
