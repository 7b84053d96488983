"""Version links (`latest`, `1.3.0` -> `1.3.0.yaml`) work stored either way a checkout has
them: real symlinks (`git clone`) or one-line files (`git clone -c core.symlinks=false`).

Each test runs on a copy made by the test, once per convention (conftest.copy_schemas).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mpsandbox.cli import main
from mpsandbox.schemas.registry import SchemaRegistry
from mpsandbox.schemas.sources import DirectorySource
from tests.conftest import LINK_CONVENTIONS, RECORDED, copy_schemas, link_target

WEB_BASE = "analytics/product_metrics/web/base"


@pytest.fixture(params=LINK_CONVENTIONS)
def repos(request, tmp_path):
    root = copy_schemas(tmp_path / "schemas", request.param)
    latest = root / "secondary/jsonschema" / WEB_BASE / "latest"
    assert latest.is_symlink() == (request.param == "symlinks")  # the copy is as asked
    return root, request.param


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def sources(root) -> list[str]:
    return ["--schemas", str(root / "secondary"), "--schemas", str(root / "primary")]


def test_latest_and_version_links_resolve_with_their_refs(repos):
    root, _ = repos
    reg = SchemaRegistry([DirectorySource(root / "secondary"), DirectorySource(root / "primary")])
    for uri in (f"/{WEB_BASE}/latest", f"/{WEB_BASE}/1.3.0", "/error/latest"):
        res = reg.resolve(uri)
        assert res.ok, (uri, res.reason)
    assert reg.resolve(f"/{WEB_BASE}/latest").location.endswith("1.3.0.yaml")
    assert DirectorySource(root / "secondary").versions(WEB_BASE) == [
        "1.0.0",
        "1.1.0",
        "1.2.0",
        "1.3.0",
    ]


def test_validate_judges_a_real_event_through_the_links(repos, tmp_path):
    root, _ = repos
    event = json.loads((RECORDED / "req/valid_web_base.json").read_text())
    event["$schema"] = f"/{WEB_BASE}/latest"
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    res = run("validate", str(path), "--format", "json", *sources(root))
    assert res.exit_code == 0, res.output
    assert json.loads(res.output.splitlines()[0])["verdict"] == "valid"


def test_lint_and_materialize_read_the_links_alike(repos):
    root, _ = repos
    folder = root / "secondary/jsonschema" / WEB_BASE
    linted = run("schema", "lint", str(folder), *sources(root))
    assert linted.exit_code == 0, linted.output
    again = run("schema", "materialize", str(folder), *sources(root))
    assert again.exit_code == 0, again.output
    assert "up to date" in again.output


def test_a_new_schema_follows_the_checkouts_convention(repos):
    root, links = repos
    secondary = root / "secondary"
    made = run(
        "schema",
        "new",
        "analytics/my_team/button_click",
        "--from",
        WEB_BASE,
        "--into",
        str(secondary),
        *sources(root),
    )
    assert made.exit_code == 0, made.output
    folder = secondary / "jsonschema/analytics/my_team/button_click"
    done = run("schema", "materialize", str(folder), *sources(root))
    assert done.exit_code == 0, done.output
    for name in ("1.0.0", "latest", "latest.yaml"):
        assert link_target(folder / name) == "1.0.0.yaml"
        assert (folder / name).is_symlink() == (links == "symlinks")
