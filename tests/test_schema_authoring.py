"""`mpsandbox schema materialize` and `mpsandbox schema new`, on copies of the real repositories.

The reference is what jsonschema-tools published: for every real `current.yaml` whose
version is the published latest, materializing it again must give the published file.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mpsandbox.authoring.materialize import equal_as_data
from mpsandbox.authoring.yamlout import dump_yaml
from mpsandbox.cli import main
from tests.conftest import LINK_CONVENTIONS, ROOT, WM, copy_schemas, link_target

SCHEMAS = WM / "schemas"
BUILTIN = ROOT / "schemas" / "jsonschema"
WEB_BASE = "secondary/jsonschema/analytics/product_metrics/web/base"

#: Published files whose text an older jsonschema-tools wrote (keys not yet sorted); the
#: data is reproduced, the text is not.
OLDER_KEY_ORDER = {"analytics/session_tick/2.0.0.yaml", "analytics/test/2.0.0.yaml"}


def copy_repos(dst: Path, links: str = "symlinks") -> Path:
    """A writable copy of both real repositories, version links stored the ``links`` way."""
    return copy_schemas(dst, links)


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def sources(repos: Path) -> list[str]:
    return ["--schemas", str(repos / "primary"), "--schemas", str(repos / "secondary")]


def load(path: Path):
    return yaml.safe_load(path.read_text())


def published_latest(folder: Path) -> str:
    """The file `latest.yaml` points at (a pseudo-link file in this checkout)."""
    link = folder / "latest.yaml"
    return os.readlink(link) if link.is_symlink() else link.read_text().strip()


@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> Path:
    return copy_repos(tmp_path_factory.mktemp("repos") / "schemas")


def test_every_published_latest_version_is_reproduced(repos):
    currents = sorted(repos.rglob("current.yaml"))
    assert len(currents) == 51
    names, byte_identical, problems = set(), set(), []
    for current in currents:
        folder = current.parent
        name = published_latest(folder)
        assert name == load(current)["$id"].rsplit("/", 1)[-1] + ".yaml", folder
        published = folder / name
        rel = published.relative_to(repos).as_posix().split("/jsonschema/", 1)[1]
        names.add(rel)
        original = published.read_text()
        published.unlink()  # materializing must write it again
        try:
            res = run("schema", "materialize", str(folder), *sources(repos))
            assert res.exit_code == 0, res.output
            text = published.read_text()
        finally:
            published.write_text(original)
        ours, theirs = yaml.safe_load(text), yaml.safe_load(original)
        if not equal_as_data(ours, theirs, ignore_examples=True):
            problems.append(f"{rel}: schema differs")
        if not equal_as_data(ours.get("examples"), theirs.get("examples")):
            problems.append(f"{rel}: examples differ")
        if text == original:
            byte_identical.add(rel)
    assert len(names) == 51
    assert problems == []
    # The text is jsonschema-tools' own (key order, quoting, folding) except where an older
    # version of it wrote the published file.
    assert names - byte_identical == OLDER_KEY_ORDER


@pytest.mark.parametrize("links", LINK_CONVENTIONS)
def test_changed_current_is_refused_then_bumped_with_version(tmp_path, links):
    repos = copy_repos(tmp_path / "schemas", links)
    folder = repos / WEB_BASE
    current = folder / "current.yaml"
    current.write_text(
        current.read_text()
        + "  - properties:\n      button_label:\n        type: string\n        maxLength: 100\n"
    )
    before = (folder / "1.3.0.yaml").read_bytes()

    refused = run("schema", "materialize", str(folder), *sources(repos))
    assert refused.exit_code == 1
    assert "changed without a version bump" in refused.stderr
    assert "/analytics/product_metrics/web/base/1.3.1" in refused.stderr
    assert (folder / "1.3.0.yaml").read_bytes() == before

    bumped = run("schema", "materialize", str(folder), "--version", "1.4.0", *sources(repos))
    assert bumped.exit_code == 0, bumped.output
    assert "$id: /analytics/product_metrics/web/base/1.4.0" in current.read_text()
    new = load(folder / "1.4.0.yaml")
    assert new["$id"] == "/analytics/product_metrics/web/base/1.4.0"
    assert new["properties"]["button_label"] == {
        "type": "string",
        "maxLength": 100,
    }
    assert new["examples"][0]["$schema"] == new["$id"]
    assert "allOf" not in new
    for link in ("1.4.0", "latest", "latest.yaml"):
        target = folder / link
        assert link_target(target) == "1.4.0.yaml"
        # the checkout's convention is kept: symlinks stay symlinks, files stay files
        assert target.is_symlink() == (links == "symlinks")
    assert (folder / "1.3.0.yaml").read_bytes() == before

    again = run("schema", "materialize", str(folder), *sources(repos))
    assert again.exit_code == 0
    assert "up to date" in again.output


def test_new_version_gets_relative_symlinks_and_json(tmp_path):
    repos = copy_repos(tmp_path / "schemas")
    folder = repos / "primary/jsonschema/fragment/http"
    for name in ("1.2.0", "latest", "latest.yaml"):
        (folder / name).unlink()  # as in a checkout with real symlinks, none yet
    current = folder / "current.yaml"
    current.write_text(current.read_text().replace("/fragment/http/1.2.0", "/fragment/http/1.3.0"))
    res = run("schema", "materialize", str(folder), "--json", *sources(repos))
    assert res.exit_code == 0, res.output
    for link in ("1.3.0", "latest", "latest.yaml"):
        assert (folder / link).is_symlink()
        assert os.readlink(folder / link) == "1.3.0.yaml"
    assert os.readlink(folder / "latest.json") == "1.3.0.json"
    import json

    as_json = json.loads((folder / "1.3.0.json").read_text())
    assert equal_as_data(as_json, load(folder / "1.3.0.yaml"))
    assert list(as_json)[:5] == ["title", "description", "$id", "$schema", "type"]

    # --version is for bumps: going back below the latest published version is refused.
    older = run("schema", "materialize", str(folder), "--version", "1.2.0", *sources(repos))
    assert older.exit_code == 1
    assert "older than the latest published version 1.3.0" in older.stderr
    assert "/fragment/http/1.3.0" in current.read_text()
    assert os.readlink(folder / "latest.yaml") == "1.3.0.yaml"


def test_repository_is_materialized_fragments_first(tmp_path):
    """A new fragment version and a schema using it, in one run: the fragment sorts after
    the schema by path, so it must be ordered by its $refs to resolve."""
    repos = copy_repos(tmp_path / "schemas")
    fragment = repos / "secondary/jsonschema/fragment/analytics/product_metrics/web"
    text = (fragment / "current.yaml").read_text()
    assert "$id: /fragment/analytics/product_metrics/web/1.1.0" in text
    text = text.replace("web/1.1.0", "web/1.2.0")
    text = text.replace(
        "\nproperties:\n",
        "\nproperties:\n  scroll_depth:\n    type: integer\n    minimum: 0\n",
        1,
    )
    (fragment / "current.yaml").write_text(text)
    base = repos / WEB_BASE / "current.yaml"
    base.write_text(
        base.read_text()
        .replace("web/base/1.3.0", "web/base/1.4.0")
        .replace(
            "/fragment/analytics/product_metrics/web/1.1.0",
            "/fragment/analytics/product_metrics/web/1.2.0",
        )
    )
    res = run("schema", "materialize", str(repos / "secondary/jsonschema"), *sources(repos))
    assert res.exit_code == 0, res.output
    assert "2 written, 49 unchanged, 0 failed" in res.output or "2 written" in res.output
    made = load(repos / WEB_BASE / "1.4.0.yaml")
    assert made["properties"]["scroll_depth"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 2**53 - 1,
    }


def test_unresolvable_ref_names_the_places_tried(tmp_path):
    repos = copy_repos(tmp_path / "schemas")
    folder = repos / "secondary/jsonschema/fragment/analytics/common"
    # Its refs point into primary: without it, /fragment/common/1.0.0 cannot be found.
    (folder / "2.0.0.yaml").unlink()
    res = run("schema", "materialize", str(folder), "--no-builtin-schemas")
    assert res.exit_code == 1
    assert "not found; tried" in res.stderr
    assert "secondary/jsonschema/fragment/common/" in res.stderr
    ok = run("schema", "materialize", str(folder), *sources(repos))
    assert ok.exit_code == 0, ok.output


def test_yaml_writer_reads_back_tricky_strings():
    tricky = [
        "",
        "yes",
        "1.0",
        "- dash",
        "a: b",
        "#hash",
        "tab\there",
        "nbsp\u00a0here",
        "line\n\n  indented\nlast",
        "trailing newline\n",
        "two trailing\n\n",
        " leading space\nx",
        "word " * 40,
        "\u2028",
    ]
    doc = {"title": "t", "properties": {"x": {"enum": tricky}}, "examples": [{"s": tricky}]}
    assert yaml.safe_load(dump_yaml(doc)) == doc


def test_new_schema_lints_clean_and_validates_experiment_events(tmp_path):
    into = tmp_path / "mine"
    secondary = SCHEMAS / "secondary"
    res = run(
        "schema",
        "new",
        "analytics/my_team/button_click",
        "--from",
        "analytics/product_metrics/web/base",
        "--fragment",
        "mpsandbox/experiment",
        "--into",
        str(into),
        "--schemas",
        str(secondary),
    )
    assert res.exit_code == 0, res.output
    folder = into / "jsonschema/analytics/my_team/button_click"
    text = (folder / "current.yaml").read_text()
    raw = yaml.safe_load(text)
    assert raw["title"] == "analytics/my_team/button_click"
    assert raw["$id"] == "/analytics/my_team/button_click/1.0.0"
    assert raw["$schema"] == "https://json-schema.org/draft-07/schema#"
    assert raw["type"] == "object"
    assert raw["allOf"] == [
        {"$ref": "/analytics/product_metrics/web/base/1.3.0"},
        {"$ref": "/fragment/mpsandbox/experiment/1.0.0"},
    ]
    assert "properties:\n  # button_label:" in text
    example = raw["examples"][0]
    assert example["$schema"] == {"$ref": "#/$id"}
    assert example["meta"]["stream"] == "analytics.my_team.button_click"

    again = run("schema", "new", "analytics/my_team/button_click", "--into", str(into),
                "--fragment", "mpsandbox/page")  # fmt: skip
    assert again.exit_code == 1 and "already exists" in again.stderr

    made = run("schema", "materialize", str(folder), "--schemas", str(secondary))
    assert made.exit_code == 0, made.output
    lint = run("schema", "lint", str(into), "--schemas", str(secondary))
    assert lint.exit_code == 0, lint.output
    assert "0 errors, 0 warnings" in lint.output

    # The loop closes: the sandbox judges events against the new schema.
    event = {
        "$schema": "/analytics/my_team/button_click/1.0.0",
        "meta": {"stream": "analytics.my_team.button_click"},
        "dt": "2026-01-01T00:00:00.000Z",
        "action": "click",
        "agent": {"client_platform": "mediawiki_js"},
        "experiment": {
            "enrolled": "my-awesome-experiment",
            "assigned": "treatment",
            "subject_id": "awaiting",
            "sampling_unit": "edge-unique",
            "coordinator": "default",
        },
    }
    import json

    good = tmp_path / "good.json"
    good.write_text(json.dumps(event))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**event, "experiment": {**event["experiment"], "coordinator": "x"}}))
    args = ["--schemas", str(into), "--schemas", str(secondary)]
    assert run("validate", str(good), *args).exit_code == 0
    judged = run("validate", str(bad), *args)
    assert judged.exit_code == 1
    assert "coordinator" in judged.output


def test_new_explains_an_unknown_base(tmp_path):
    res = run(
        "schema",
        "new",
        "analytics/x",
        "--from",
        "analytics/product_metrics/web/base@9.9.9",
        "--into",
        str(tmp_path),
        "--schemas",
        str(SCHEMAS / "secondary"),
    )
    assert res.exit_code == 1
    assert "no schema source holds analytics/product_metrics/web/base@9.9.9" in res.stderr
    assert "1.0.0, 1.1.0, 1.2.0, 1.3.0" in res.stderr
    assert not (tmp_path / "jsonschema/analytics/x").exists()


NEW_FRAGMENTS = ("experiment", "performer", "page", "app")


def test_builtin_fragments_are_materialized_from_their_sources(tmp_path):
    copy = tmp_path / "schemas"
    shutil.copytree(ROOT / "schemas", copy, symlinks=True)
    for name in NEW_FRAGMENTS:
        folder = copy / "jsonschema/fragment/mpsandbox" / name
        assert os.readlink(folder / "latest.yaml") == "1.0.0.yaml"
        assert load(folder / "1.0.0.yaml")["title"] == f"fragment/mpsandbox/{name}"
        res = run("schema", "materialize", str(folder), "--no-builtin-schemas")
        assert res.exit_code == 0, res.output
        assert "up to date" in res.output
    lint = run(
        "schema",
        "lint",
        *(str(BUILTIN / "fragment/mpsandbox" / n) for n in NEW_FRAGMENTS),
        "--format",
        "json",
    )
    assert lint.exit_code == 0, lint.output
    assert '"errors": 0' in lint.output and '"warnings": 0' in lint.output


def test_builtin_library_findings_are_the_known_two():
    """The older library files predate the authoring commands; each finding is deliberate
    (see schemas/README.md). A third one is a regression, a fixed one needs the README."""
    res = run("schema", "lint", str(ROOT / "schemas"), "--format", "json")
    assert res.exit_code == 1
    import json

    found = {
        (p["path"].split("jsonschema/")[-1], p["rule"]) for p in json.loads(res.output)["problems"]
    }
    assert found == {
        ("fragment/mpsandbox/interaction/1.0.0.yaml", "schema-enforced-numeric-bounds"),
        ("mpsandbox/example/button_click/current.yaml", "version-bump"),
    }


def test_builtin_library_ships_in_the_package():
    link = ROOT / "src/mpsandbox/builtin_schemas"
    assert link.is_symlink() and link.resolve() == (ROOT / "schemas").resolve()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "builtin_schemas/**/*" in config["tool"]["setuptools"]["package-data"]["mpsandbox"]
