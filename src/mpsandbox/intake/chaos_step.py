"""Chaos as one step of :func:`~mpsandbox.intake.submit.handle_post` (chaos.py says what
each injection means).

A request chaos touches is parsed, judged, sliced and stored by the same code as any other:
``handle_post`` asks this module, at its few decision points, what the chaos changes there
(record it, drop the request, answer an injected status instead of judging, leave some
events unjudged and failed). The HTTP route then counts what was applied, waits the
latency and, for a drop, closes the connection unanswered. Nothing here parses or judges.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mpsandbox.chaos import DROP, INJECTED_MESSAGE, Chaos, Decision
from mpsandbox.intake import protocol
from mpsandbox.records import ERROR, EventRecord, RequestRecord

#: What an injected status answers: (status, reason, JSON body, extra headers).
Answer = tuple[int, str, Any, dict[str, str] | None]


@dataclass(slots=True)
class ChaosTurn:
    """The chaos decided for one request, and the setting that decided it."""

    chaos: Chaos
    decision: Decision

    @classmethod
    def decide(cls, chaos: Chaos | None) -> ChaosTurn | None:
        """This request's chaos (None when chaos is off or leaves it alone)."""
        if chaos is None:
            return None
        decision = chaos.decide()
        return None if decision is None else cls(chaos, decision)

    def mark(self, record: RequestRecord) -> None:
        record.chaos = self.decision.record()

    @property
    def drops(self) -> bool:
        return self.decision.injected == DROP

    @property
    def latency_s(self) -> float:
        return self.decision.latency_ms / 1000

    def noted(self, record: RequestRecord) -> None:
        """Count what was applied to the request (its ``requests.chaos``)."""
        self.chaos.note(record.chaos)

    def not_applied(self, record: RequestRecord) -> None:
        """An injected status needs events; a request without any keeps only the latency."""
        decision = self.decision
        if decision.injected is not None:
            record.chaos = Decision(None, decision.latency_ms, decision.spec).record()
            if not decision.latency_ms:
                record.chaos = None

    def drop_note(
        self,
        record: RequestRecord,
        headers: Mapping[str, str],
        body: bytes,
        too_large: bool,
        limit: int,
        keep: int,
    ) -> None:
        """Record a request whose connection is closed unanswered: how many events it
        carried (when its body reads), and that none was stored."""
        if too_large:
            record.body = body[:keep]
        else:
            with contextlib.suppress(protocol.BodyError, ValueError):
                parsed, _ = protocol.read_body(
                    headers.get("content-type"), headers.get("content-encoding"), body, limit
                )
                if not protocol.is_empty_body(parsed):
                    record.event_count = len(protocol.as_events(parsed))
        record.note = "chaos: the connection was closed without an answer; no event was stored"

    def injected_answer(self, record: RequestRecord, events: list[Any]) -> Answer | None:
        """The answer of an injected 503 or 500, which stores none of the events; None
        when the request is judged (a 207, or latency alone)."""
        decision, n = self.decision, len(events)
        if decision.injected == 503:
            record.note = f"chaos: answered 503; none of the {n} events was stored"
            problem = {
                "status": 503,
                "type": "chaos",
                "title": "mpsandbox chaos: injected 503",
                "detail": f"The chaos setting {decision.spec} answered this request 503; none "
                f"of its {n} events was stored. Retry after {decision.retry_after} s.",
            }
            headers = {"Retry-After": str(decision.retry_after)}
            return 503, "Service Unavailable", problem, headers
        if decision.injected == 500:
            # EventGate's answer when every event of a request errored.
            now, message = record.received_at, self._message()
            failed = [EventRecord(i, e, ERROR, now, message=message) for i, e in enumerate(events)]
            answer = protocol.answer_for(failed)
            record.note = f"chaos: answered 500; none of the {n} events was stored"
            return answer.status, answer.reason, answer.body, None
        return None

    def failed_at(self, n: int) -> frozenset[int]:
        """The positions a 207 fails among ``n`` events (none without a 207). They are
        never judged: the platform rules' memory must not count them as received, so the
        client's retry of them is no duplicate."""
        if self.decision.injected != 207:
            return frozenset()
        return frozenset(self.chaos.choose_failed(n))

    def answered(
        self,
        record: RequestRecord,
        events: list[Any],
        judged: list[EventRecord],
        failed_at: frozenset[int],
        hasty: bool,
    ) -> list[EventRecord]:
        """Every event as the answer reports it: the judged ones, and the failed ones as
        errored by injection; the request records which failed."""
        if not failed_at:
            return judged
        now, message = record.received_at, self._message()
        rest = iter(judged)
        out = [
            EventRecord(i, e, ERROR, now, message=message) if i in failed_at else next(rest)
            for i, e in enumerate(events)
        ]
        order = sorted(failed_at)
        record.chaos = self.decision.record(failed=order)
        which = ", ".join(str(i) for i in order)
        record.note = (
            f"chaos: {len(order)} of {len(events)} events failed by injection and were not "
            f"stored (index {which})"
        )
        if hasty:
            record.note += "; hasty: answered 202 before processing, so the client never knows"
        return out

    def _message(self) -> str:
        return INJECTED_MESSAGE.format(spec=self.decision.spec)
