"""OpenAPI documents: EventGate's own (`/?spec`) and the sandbox's (`/sandbox/openapi.json`)."""

from __future__ import annotations

from typing import Any

from mpsandbox import __version__
from mpsandbox.query import QUERY_EXAMPLES, QUERY_HELP


def query_help_markdown() -> str:
    """The query language (``q``) as Markdown, rendered from mpsandbox.query's help."""
    lines = [
        "Search query, ANDed with the other filters. Terms are separated by spaces; "
        "different keys must all match, the same key repeated matches any of its values. "
        "A bad query is answered 400 with the problem and its 0-based `position`.",
        "",
    ]
    lines += [f"- `{syntax}`: {meaning}" for syntax, meaning in QUERY_HELP]
    lines += ["", "Examples:", ""]
    lines += [f"- `{example}`: {meaning}" for example, meaning in QUERY_EXAMPLES]
    return "\n".join(lines)


_FILTERS = [
    ("stream", "Exact stream name (meta.stream)."),
    ("verdict", "valid, invalid, error or legacy (an EventLogging beacon, not validated)."),
    ("schema", "Schema title, or title/version (e.g. analytics/product_metrics/web/base/1.3.0)."),
    ("action", "The event's `action` field."),
    ("session", "performer.session_id."),
    ("pageview", "performer.pageview_id."),
    ("meta_id", "meta.id (as sent or as filled in)."),
    ("since", "Received at or after: epoch seconds, ISO-8601, or a duration back from now (5m)."),
    ("until", "Received before: same forms as since."),
    ("text", "Case-insensitive substring of the event JSON."),
    ("request", "Row id of the request the events came in."),
    ("q", "__QUERY_HELP__"),
]


def _params(names: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {
            "name": n,
            "in": "query",
            "required": False,
            "description": query_help_markdown() if d == "__QUERY_HELP__" else d,
            "schema": {"type": "string"},
        }
        for n, d in names
    ]


def _problem_ref() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/problem"}}}


def eventgate_spec() -> dict[str, Any]:
    return {
        "openapi": "3.0.0",
        "info": {
            "version": "1.8.4",
            "title": "EventGate (as emulated by mpsandbox)",
            "description": "Validates and stores events locally.",
        },
        "paths": {
            "/robots.txt": {"get": {"responses": {"200": {"description": "Success"}}}},
            "/": {"get": {"responses": {"200": {"description": "Spec with ?spec"}}}},
            "/v1/events": {
                "post": {
                    "summary": "Produce events",
                    "responses": {
                        "201": {"description": "Success"},
                        "202": {"description": "Hasty success (answered before processing)."},
                        "207": {"description": "Partial Success", "content": _problem_ref()},
                        "400": {"description": "Failure", "content": _problem_ref()},
                    },
                }
            },
            "/v1/_test/events": {"get": {"responses": {"201": {"description": "Success"}}}},
            "/_info": {"get": {"responses": {"200": {"description": "Version"}}}},
        },
        "components": {"schemas": {"problem": _problem_schema()}},
    }


def _problem_schema() -> dict[str, Any]:
    return {
        "required": ["type"],
        "properties": {
            "status": {"type": "integer"},
            "type": {"type": "string"},
            "title": {"type": "string"},
            "detail": {"type": "string"},
            "method": {"type": "string"},
            "uri": {"type": "string"},
        },
    }


def sandbox_openapi(app=None) -> dict[str, Any]:
    ok = {"200": {"description": "OK", "content": {"application/json": {}}}}
    intake_paths = ["/v1/events"]
    beacon_paths = ["/beacon/event"]
    if app is not None:
        from mpsandbox.intake.eventgate_routes import SANDBOX_KEY

        intake_paths = list(dict.fromkeys(app[SANDBOX_KEY].settings.intake_paths))
        beacon_paths = list(dict.fromkeys(app[SANDBOX_KEY].settings.beacon_paths))
    paths: dict[str, Any] = {}
    beacon = {
        "summary": "Legacy EventLogging beacon: the capsule in the query string, as "
        "encodeURIComponent(JSON.stringify(capsule)) + ';', with an empty body.",
        "description": "Answered 204 with an empty body whatever the query, as production's "
        "edge answers; the request is recorded, its capsule stored as an event with verdict "
        "legacy (judged against its migrated analytics/legacy schema when there is one), or "
        "the reason the query is not a capsule recorded on the request.",
        "responses": {
            "204": {"description": "Always (unless the store cannot take it)"},
            "503": {"description": "Store backlog full or store failing; retry"},
        },
    }
    for p in beacon_paths:
        paths[p] = {"get": beacon, "post": beacon}
    for p in intake_paths:
        paths[p] = {
            "post": {
                "summary": "EventGate intake: one event or an array of events.",
                "parameters": _params([("hasty", "Any non-empty value answers 202 at once.")]),
                "responses": {
                    "201": {"description": "All accepted"},
                    "202": {"description": "Hastily received"},
                    "207": {"description": "Some failed", "content": _problem_ref()},
                    "400": {"description": "All invalid, or empty body", "content": _problem_ref()},
                    "500": {
                        "description": "All failed with errors, or unreadable body",
                        "content": _problem_ref(),
                    },
                    "503": {
                        "description": "Store backlog full or store failing, or injected "
                        "by chaos; retry after Retry-After"
                    },
                },
                "description": "Also answered with a trailing slash, as EventGate's "
                "non-strict routing does. With chaos on (/sandbox/chaos), a share of requests is "
                "answered 500, 503 or 207 with injected failures, delayed, or dropped without "
                "an answer; each request records the chaos applied to it.",
            },
            "options": {"summary": "CORS preflight", "responses": ok},
        }
    paths.update(
        {
            "/v1/_test/events": {
                "get": {"summary": "Post the configured test events.", "responses": ok}
            },
            "/_info": {"get": {"summary": "Emulated EventGate version.", "responses": ok}},
            "/": {"get": {"summary": "EventGate's OpenAPI spec with ?spec.", "responses": ok}},
            "/robots.txt": {"get": {"summary": "robots.txt", "responses": ok}},
            "/readyz": {
                "get": {
                    "summary": "Ready (200) while the store takes writes; 503 otherwise, with "
                    '"store" naming its state (restarting, failed, deleted, replaced, full, '
                    '...) and "detail" saying why.',
                    "responses": ok,
                }
            },
            "/sandbox/events": {
                "get": {
                    "summary": "Stored events, newest first, with cursor pagination.",
                    "parameters": _params(
                        [
                            *_FILTERS,
                            ("limit", "1..1000, default 50."),
                            ("before", "Cursor: events with id below this."),
                            ("after", "Cursor: events with id above this."),
                            ("order", "desc (default) or asc."),
                        ]
                    ),
                    "responses": {**ok, "400": {"description": "Bad parameter or query"}},
                }
            },
            "/sandbox/events/{id}": {
                "get": {
                    "summary": "One event: as received, as accepted, verdict, errors, "
                    "explanation and its request.",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        }
                    ],
                    "responses": {**ok, "404": {"description": "No such event"}},
                }
            },
            "/sandbox/errors": {
                "get": {
                    "summary": "Validation errors of the matching events, grouped by schema, "
                    "dataPath and keyword (events that failed with an error group by their "
                    "message), most frequent first. Each group: id, schema_title, "
                    "schema_version, data_path, keyword, detail (missing or extra property, "
                    "or the error message), message (a sample), count (errors), events "
                    "(distinct events), first_seen, last_seen. List a group's events with "
                    "/sandbox/events?q=group:ID.",
                    "parameters": _params([*_FILTERS, ("limit", "1..1000, default 100.")]),
                    "responses": {**ok, "400": {"description": "Bad parameter or query"}},
                }
            },
            "/sandbox/stats": {
                "get": {
                    "summary": "Counts, writer state, schema sources, the chaos setting.",
                    "responses": ok,
                }
            },
            "/sandbox/reset": {
                "post": {"summary": "Delete every stored request and event.", "responses": ok}
            },
            "/sandbox/wait": {
                "get": {
                    "summary": "Long-poll until `count` matching events are stored.",
                    "parameters": _params(
                        [
                            *_FILTERS,
                            ("count", "How many (default 1)."),
                            ("timeout", "Seconds (default 30, max 600)."),
                        ]
                    ),
                    "responses": {**ok, "408": {"description": "Timed out"}},
                }
            },
            "/sandbox/schemas/resolve": {
                "get": {
                    "summary": "Where a $schema URI resolves from, or every place tried.",
                    "parameters": _params([("uri", "The $schema value.")]),
                    "responses": ok,
                }
            },
            "/sandbox/openapi.json": {"get": {"summary": "This document.", "responses": ok}},
            "/w/api.php": {
                "get": {
                    "summary": "MediaWiki's Action API for action=streamconfigs only "
                    '(EventStreamConfig): {"streams": {name: settings}} with every setting, '
                    "`stream` and `topics`; unknown streams left out; local sample-rate "
                    "overrides applied. No action answers a help page; another action "
                    "answers a MediaWiki `badvalue` error (HTTP 200).",
                    "parameters": _params(
                        [
                            ("action", "streamconfigs"),
                            ("format", "json (the only output format)"),
                            ("streams", "Stream names joined with |; default every stream."),
                            (
                                "constraints",
                                "key=value settings constraints joined with |, e.g. "
                                "destination_event_service=eventgate-analytics-external; "
                                "nested keys as a[b]=v; values compared as PHP strings.",
                            ),
                            ("all_settings", "Accepted and ignored (always all settings)."),
                        ]
                    ),
                    "responses": ok,
                }
            },
            "/v1/stream-configs": {
                "get": {
                    "summary": "eventgate-wikimedia's stream configs route: every configured "
                    "stream (names and /regex/ keys) as {name: settings}. 404 without "
                    "--stream-config.",
                    "responses": {**ok, "404": {"description": "No stream config loaded"}},
                }
            },
            "/v1/stream-configs/{streams}": {
                "get": {
                    "summary": "The named streams (comma or pipe separated) as "
                    "{name: settings}; unknown streams left out. 404 without --stream-config.",
                    "parameters": [
                        {
                            "name": "streams",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {**ok, "404": {"description": "No stream config loaded"}},
                }
            },
            **_override_paths(ok),
            **_revalidation_paths(ok),
            **_chaos_paths(ok),
        }
    )
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "mpsandbox",
            "version": __version__,
            "description": "EventGate-compatible intake and inspection API.",
        },
        "paths": paths,
        "components": {"schemas": {"problem": _problem_schema()}},
    }


def _override_paths(ok: dict[str, Any]) -> dict[str, Any]:
    """Local overrides, the Test Kitchen-style configuration API and the sampling what-if."""
    bad = {"400": {"description": "Bad parameter or body", "content": _problem_ref()}}
    summary = (
        "Answers {overrides: [{kind, key, value, set_by, set_at, set_at_iso}], mpo (the "
        "?mpo= value forcing every experiment override), wiki_url (--wiki-url with mpo added; "
        "null without it), rate_overrides {stream: rate}, flags {name: value}, revision, "
        "history (newest 20 changes)}"
    )
    return {
        "/sandbox/overrides": {
            "get": {"summary": "Every local override. " + summary + ".", "responses": ok},
            "put": {
                "summary": "Set one override. " + summary + ", plus override and previous.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["kind", "key", "value"],
                                "properties": {
                                    "kind": {
                                        "type": "string",
                                        "enum": ["experiment", "sample_rate", "flag"],
                                    },
                                    "key": {
                                        "type": "string",
                                        "description": "Experiment name, stream name (or a "
                                        "/regex/ key of the stream configs) or flag name.",
                                    },
                                    "value": {
                                        "description": "A group (experiment names and groups "
                                        "follow Test Kitchen's rules, and must be loaded ones "
                                        "with --experiments), a rate in 0..1, or any JSON."
                                    },
                                    "set_by": {"type": "string", "enum": ["api", "tui"]},
                                },
                            }
                        }
                    },
                },
                "responses": {**ok, **bad},
            },
            "delete": {
                "summary": "Remove one override (kind and key), every override of a kind "
                "(kind), or all (no parameters), in one step. " + summary + ", plus removed.",
                "parameters": _params(
                    [
                        ("kind", "experiment, sample_rate or flag."),
                        ("key", "The override's key (needs kind)."),
                    ]
                ),
                "responses": {**ok, **bad, "404": {"description": "No such override"}},
            },
        },
        "/sandbox/overrides/revert": {
            "post": {
                "summary": "Undo the newest override change not yet undone (a set, a delete, "
                "a clear of all); repeat to step back further. " + summary + ", plus reverted "
                "(null when there was nothing to undo).",
                "responses": ok,
            }
        },
        "/api/v1/experiments": {
            "get": {
                "summary": "Test Kitchen's experiments API (what TestKitchen's ConfigsFetcher "
                "reads from $wgTestKitchenInstrumentConfiguratorBaseUrl): a list of rows "
                "{name, start, end, user_identifier_type, groups, sample_rate {default, "
                "<rate>: [dbnames]}, stream_name, contextual_attributes, schema_id?} from "
                "--experiments. An experiment override serves groups [group] and sample_rate "
                "{default: 1} (everyone enrolled in that group) and adds mpsandbox_override "
                "with what it replaced.",
                "responses": ok,
            }
        },
        "/api/v1/instruments": {
            "get": {
                "summary": "Test Kitchen's instruments API: rows {name, start, end, "
                "sample_unit, sample_rate, stream_name, schema_title, contextual_attributes} "
                "from --instruments (empty without it). A sample-rate override of an "
                "instrument's stream serves sample_rate {default: rate} and adds "
                "mpsandbox_override.",
                "responses": {**ok, "500": {"description": "Definitions cannot be read"}},
            }
        },
        "/sandbox/whatif/sampling": {
            "get": {
                "summary": "How many distinct captured ids of the sample unit (sessions, "
                "pageviews or devices) would be in sample at a rate, by the web (JS) rule and "
                "the app (Java) rule: scopes.stream (events of the stream) and scopes.all "
                "(every stored event), each {ids, web: {in_sample, out_of_sample, share}, "
                "app: {...}}.",
                "parameters": _params(
                    [
                        ("stream", "The stream (its sample.unit and rate are the defaults)."),
                        ("rate", "0..1; default the stream's overridden, else configured rate."),
                        ("unit", "session, pageview or device; default the stream's unit."),
                    ]
                ),
                "responses": {**ok, **bad},
            }
        },
    }


def _revalidation_paths(ok: dict[str, Any]) -> dict[str, Any]:
    """Re-validation after schema changes, and the verdict flips it recorded."""
    bad = {"400": {"description": "Bad parameter or body", "content": _problem_ref()}}
    return {
        "/sandbox/revalidate": {
            "post": {
                "summary": "Judge the newest stored events again with the schemas as they are "
                "now, recording each verdict that flips (the stored verdict is kept). Body "
                '(optional): {"schemas": [title, ...], "limit": N or "all"}; the same as '
                "?schema=&limit=. Default: every title, the newest --revalidate events. "
                "Answers {run, trigger, titles, limit, seconds, checked, flipped, "
                'errors_changed, by_change {"valid→invalid": n}, events (flipped ids), '
                "problems (schema files that do not parse)}.",
                "responses": {**ok, **bad},
            }
        },
        "/sandbox/flips": {
            "get": {
                "summary": "Verdict flips, newest first: {flips: [{id, run_id, event_id, "
                "schema_uri, schema_location, before_verdict, after_verdict, before_errors, "
                "after_errors, after_message, at, trigger, stream, action, schema_title}]}.",
                "parameters": _params(
                    [
                        ("run", "Only this run."),
                        ("event", "Only this event."),
                        ("limit", "At most this many (default 100)."),
                        ("offset", "Skip this many."),
                    ]
                ),
                "responses": {**ok, **bad},
            }
        },
        "/sandbox/events/{id}/working-copy": {
            "get": {
                "summary": "One stored event judged by the working copy of its schema (the "
                "unmaterialized current.yaml, materialized in memory: refs resolved across "
                "sources, allOf merged): {id, stored_verdict, working_copy (its path, null "
                "when the title has none: then the published version judges), judged_by, "
                "working_copy_version, verdict, errors, message, reason}.",
                "responses": {**ok, **bad, "404": {"description": "No such event"}},
            }
        },
        "/sandbox/revalidations": {
            "get": {
                "summary": "Re-validation runs, newest first: {runs: [{id, started_at, "
                "seconds, trigger, titles, limit_n, checked, flipped, errors_changed, "
                "summary}]}.",
                "parameters": _params([("limit", "At most this many (default 20).")]),
                "responses": {**ok, **bad},
            }
        },
    }


def _chaos_paths(ok: dict[str, Any]) -> dict[str, Any]:
    """The chaos setting and the recorded requests it shows on."""
    from mpsandbox.chaos import GRAMMAR

    bad = {"400": {"description": "Bad chaos setting", "content": _problem_ref()}}
    summary = (
        "Answers {on, spec, settings {500, 503, 207, drop, latency_ms [min, max] or null, "
        "failed, retry_after, seed}, description, set_by, set_at, set_at_iso, revision, "
        "counts (requests this setting touched in this intake, by injection, and latency), "
        "grammar, examples}"
    )
    share = {"type": "number", "minimum": 0, "maximum": 1}
    return {
        "/sandbox/chaos": {
            "get": {"summary": "The chaos setting. " + summary + ".", "responses": ok},
            "put": {
                "summary": "Set chaos (in force for the next request): a share of intake "
                "requests answered 500 (every event failed), 503 (Retry-After), 207 (some "
                "events failed, the rest stored) or dropped, and latency added to every "
                "answer. Injected 500, 503 and drops store no events. " + summary + ", plus "
                "previous. Spec grammar: " + GRAMMAR + ".",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "string",
                                        "description": "e.g. 503:0.2,latency:200ms (alone; "
                                        "'off' turns chaos off)",
                                    },
                                    "500": share,
                                    "503": share,
                                    "207": share,
                                    "drop": share,
                                    "latency_ms": {
                                        "description": "Milliseconds, or [min, max] for a "
                                        "uniform draw (at most 300000)."
                                    },
                                    "failed": {
                                        **share,
                                        "description": "Share of a 207's events that fail "
                                        "(default 0.5).",
                                    },
                                    "retry_after": {"type": "integer", "minimum": 0},
                                    "seed": {"type": "integer", "minimum": 0},
                                    "set_by": {"type": "string", "enum": ["api", "tui"]},
                                },
                            }
                        }
                    },
                },
                "responses": {**ok, **bad},
            },
            "delete": {
                "summary": "Turn chaos off. " + summary + ", plus previous.",
                "responses": ok,
            },
        },
        "/sandbox/requests": {
            "get": {
                "summary": "Recorded requests, newest first, without bodies: {requests: [{id, "
                "received_at, method, path, query, remote, request_id, status (null when "
                "chaos dropped the connection), reason, hasty, event_count, stored_events, "
                "error, note, chaos, body_size}]}.",
                "parameters": _params(
                    [
                        ("limit", "At most this many (default 50)."),
                        ("before", "Cursor: requests with id below this."),
                    ]
                ),
                "responses": {**ok, "400": {"description": "Bad parameter"}},
            }
        },
        "/sandbox/requests/{id}": {
            "get": {
                "summary": "One recorded request: headers, body (text, or body_base64), the "
                "answer sent (status, reason, response_body), chaos applied, and the events "
                "it stored.",
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
                ],
                "responses": {**ok, "404": {"description": "No such request"}},
            }
        },
    }
