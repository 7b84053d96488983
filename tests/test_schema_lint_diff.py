"""`mpsandbox schema lint` and `mpsandbox schema diff`, on the real repositories and on
copies of them with one thing broken at a time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.test_schema_authoring import SCHEMAS, WEB_BASE, copy_repos, run, sources

PRIMARY_ARGS = ["--schemas", str(SCHEMAS / "primary"), "--schemas", str(SCHEMAS / "secondary")]


def lint_json(*args: str) -> tuple[int, dict]:
    res = run("schema", "lint", "--format", "json", *args)
    return res.exit_code, json.loads(res.output)


def rules(report: dict) -> set[str]:
    return {p["rule"] for p in report["problems"]}


# --- lint -----------------------------------------------------------------------------------


def test_real_repositories_lint_clean():
    res = run("schema", "lint", str(SCHEMAS), *PRIMARY_ARGS)
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[-1] == "191 schema files checked: 0 errors, 0 warnings"


@pytest.fixture
def repos(tmp_path) -> Path:
    return copy_repos(tmp_path / "schemas")


def test_each_rule_reports_its_problem(repos):
    folder = repos / "secondary/jsonschema/analytics/test"
    current = folder / "current.yaml"
    raw = yaml.safe_load(current.read_text())
    raw["$id"] = "/analytics/test/2.1.0"  # a new, not yet materialized version
    raw["title"] = "analytics/tset"
    raw["allOf"].append(
        {
            "properties": {
                "search_query": {"type": "string", "pattern": "^[a-z]+$"},
                "clickCount": {"type": "integer"},
            }
        }
    )
    raw["examples"].append({"$schema": {"$ref": "#/$id"}, "meta": {"stream": 1}})
    current.write_text(yaml.safe_dump(raw, sort_keys=False))

    code, report = lint_json(str(folder), *sources(repos))
    assert code == 1
    by_rule = {p["rule"]: p for p in report["problems"]}
    secure = by_rule["schema-is-secure"]
    assert secure["message"].startswith("production would refuse this schema: ")
    assert secure["pointer"] == "/properties/search_query"
    assert '"pattern" but no "maxLength"' in secure["message"]
    assert "rule: pattern" in secure["message"]
    assert "analytics/tset" in by_rule["title-matches-path"]["message"]
    assert "clickCount" in by_rule["schema-snake-case-properties"]["message"]
    assert "example 2 does not validate" in by_rule["schema-examples-are-valid"]["message"]
    assert "'.meta.stream' should be string" in by_rule["schema-examples-are-valid"]["message"]
    assert by_rule["not-materialized"]["severity"] == "warning"
    assert all(p["path"].endswith("current.yaml") for p in report["problems"])


def test_meta_schema_is_checked_on_the_materialized_schema(repos):
    folder = repos / "secondary/jsonschema/analytics/test"
    current = folder / "current.yaml"
    current.write_text(
        current.read_text().replace("analytics/test/2.0.0", "analytics/test/2.1.0")
        + "properties:\n  ratio:\n    type: nubmer\n"
    )
    code, report = lint_json(str(current), *sources(repos))
    assert code == 1
    [problem] = [p for p in report["problems"] if p["rule"] == "schema-is-valid"]
    assert problem["pointer"] == "/properties/ratio/type"
    assert "nubmer" in problem["message"]


def test_published_file_rules(repos):
    folder = repos / "secondary/jsonschema/analytics/test"
    published = yaml.safe_load((folder / "2.0.0.yaml").read_text())
    published["$id"] = "/analytics/test/2.0.1"
    published["required"].append("no_such_field")
    published["properties"]["test_int"] = {"type": "integer"}
    published["properties"]["test_union"] = {"type": ["string", "null"]}
    published["examples"][0]["$schema"] = "/analytics/test/1.0.0"
    (folder / "2.0.0.yaml").write_text(yaml.safe_dump(published, sort_keys=False))

    code, report = lint_json(str(folder / "2.0.0.yaml"))
    assert code == 1
    found = {(p["rule"], p.get("pointer")) for p in report["problems"]}
    assert ("id-matches-path", None) in found
    assert ("schema-required-properties-exist", "") in found
    assert ("schema-enforced-numeric-bounds", "/properties/test_int") in found
    assert ("schema-deterministic-types", "/properties/test_union") in found
    assert ("schema-examples-$schema-matches-schema-$id", None) in found


def test_change_without_version_bump_is_an_error(repos):
    current = repos / WEB_BASE / "current.yaml"
    current.write_text(current.read_text().replace("web/1.1.0", "web/1.0.0"))
    res = run("schema", "lint", str(current.parent), *sources(repos))
    assert res.exit_code == 1
    line = next(x for x in res.output.splitlines() if "[version-bump]" in x)
    assert line.startswith(f"{current}: [version-bump] changed without a version bump")
    assert "1.3.0" in line
    assert res.output.splitlines()[-1] == "5 schema files checked: 1 error, 0 warnings"


def test_warnings_alone_do_not_fail(repos):
    current = repos / WEB_BASE / "current.yaml"
    current.write_text(current.read_text().replace("web/base/1.3.0", "web/base/1.4.0"))
    res = run("schema", "lint", str(current.parent), *sources(repos))
    assert res.exit_code == 0, res.output
    assert "[not-materialized] warning: version 1.4.0 is not materialized yet" in res.output
    assert "0 errors, 1 warning" in res.output


def test_skip_list_of_the_repository_is_honoured(repos):
    legacy = repos / "secondary/jsonschema/analytics/legacy/navigationtiming"
    assert run("schema", "lint", str(legacy), *sources(repos)).exit_code == 0
    (repos / "secondary/.jsonschema-tools.yaml").unlink()
    code, report = lint_json(str(legacy), *sources(repos))
    assert code == 1
    assert rules(report) == {"schema-snake-case-properties"}


def test_unparsable_file_is_reported_not_raised(repos):
    broken = repos / "primary/jsonschema/test/event/current.yaml"
    broken.write_text("title: [unclosed\n")
    code, report = lint_json(str(broken.parent), *sources(repos))
    assert code == 1
    assert "parse" in rules(report)


# --- diff -----------------------------------------------------------------------------------


def diff(a: str, b: str, *extra: str):
    return run("schema", "diff", a, b, *PRIMARY_ARGS, *extra)


def test_web_base_1_2_to_1_3():
    res = diff(
        "analytics/product_metrics/web/base@1.2.0", "analytics/product_metrics/web/base@1.3.0"
    )
    assert res.exit_code == 1
    lines = res.output.splitlines()
    assert any(
        ln.split() == ["BREAKING", "element_id", "maxLength", "added:", "64"] for ln in lines
    )
    assert any(ln.startswith("compatible") and "experiments" in ln for ln in lines)
    assert any(ln.startswith("doc") and "mexLength" in ln for ln in lines)
    assert lines[-1].endswith(": 1 breaking, 3 compatible, 2 doc")


def test_fragment_versions_and_json_output():
    res = diff("/fragment/common/1.0.0", "/fragment/common/2.0.0", "--format", "json")
    assert res.exit_code == 1
    report = json.loads(res.output)
    changes = {(c["path"], c["kind"], c["class"]) for c in report["changes"]}
    assert ("dt", "added", "breaking") in changes  # a new required field
    assert ("(root)", "additionalProperties", "breaking") in changes  # closed
    assert ("meta.dt", "required", "compatible") in changes  # no longer required
    assert ("meta.stream", "description", "doc") in changes
    assert report["breaking"] == 2

    removed = diff("fragment/http@1.1.0", "fragment/http@1.2.0")
    assert removed.exit_code == 1 and "http.client_ip  field removed" in removed.output

    added = diff("fragment/http@1.0.0", "fragment/http@1.1.0")
    assert added.exit_code == 0
    assert "http.protocol  optional field added" in added.output


def test_files_and_current_yaml_can_be_compared(repos):
    folder = repos / WEB_BASE
    current = folder / "current.yaml"
    res = run("schema", "diff", str(folder / "1.3.0.yaml"), str(current), *sources(repos))
    assert res.exit_code == 0
    assert res.output.splitlines()[-1].endswith("0 breaking, 0 compatible, 0 doc")


RULES = [
    ({"type": "string"}, {"type": "integer"}, "breaking", "type changed"),
    ({"type": "integer"}, {"type": "number"}, "compatible", "type widened"),
    ({"type": "string"}, {"type": ["string", "null"]}, "compatible", "type widened"),
    ({"enum": ["a", "b"]}, {"enum": ["a"]}, "breaking", "enum narrowed"),
    ({"enum": ["a"]}, {"enum": ["a", "b"]}, "compatible", "enum widened"),
    ({"type": "string"}, {"type": "string", "enum": ["a"]}, "breaking", "enum added"),
    ({"maxLength": 10}, {"maxLength": 5}, "breaking", "maxLength lowered"),
    ({"maxLength": 10}, {"maxLength": 50}, "compatible", "maxLength raised"),
    ({"minLength": 1}, {"minLength": 2}, "breaking", "minLength raised"),
    ({"minimum": 1}, {}, "compatible", "minimum removed"),
    ({}, {"pattern": "^a"}, "breaking", "pattern added"),
    ({"pattern": "^a"}, {"pattern": "^ab"}, "breaking", "pattern changed"),
    ({"pattern": "^a"}, {}, "compatible", "pattern removed"),
    ({"description": "x"}, {"description": "y"}, "doc", "description changed"),
]


@pytest.mark.parametrize(("old", "new", "severity", "words"), RULES)
def test_field_change_classes(tmp_path, old, new, severity, words):
    def schema(field: dict) -> dict:
        return {"type": "object", "properties": {"f": field}}

    (tmp_path / "a.yaml").write_text(yaml.safe_dump(schema(old)))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(schema(new)))
    res = run(
        "schema", "diff", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"), "--format", "json"
    )
    changes = json.loads(res.output)["changes"]
    assert [(c["path"], c["class"]) for c in changes] == [("f", severity)]
    assert words in changes[0]["message"]
    assert res.exit_code == (1 if severity == "breaking" else 0)


def test_requiredness(tmp_path):
    a = {"type": "object", "properties": {"f": {"type": "string"}}}
    b = {**a, "required": ["f"], "properties": {**a["properties"], "g": {"type": "string"}}}
    c = {**b, "required": ["f", "g"]}
    for name, doc in (("a", a), ("b", b), ("c", c)):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(doc))
    ab = run("schema", "diff", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))
    assert ab.exit_code == 1
    assert "now required" in ab.output and "optional field added" in ab.output
    ac = run("schema", "diff", str(tmp_path / "a.yaml"), str(tmp_path / "c.yaml"))
    assert "required field added" in ac.output
    ba = run("schema", "diff", str(tmp_path / "b.yaml"), str(tmp_path / "a.yaml"))
    assert "no longer required" in ba.output and "field removed" in ba.output


def test_missing_version_says_which_exist():
    res = diff(
        "analytics/product_metrics/web/base@1.5.0", "analytics/product_metrics/web/base@1.3.0"
    )
    assert res.exit_code == 2
    assert "no schema source holds /analytics/product_metrics/web/base/1.5.0" in res.stderr
    assert "exists in versions 1.0.0, 1.1.0, 1.2.0, 1.3.0" in res.stderr
