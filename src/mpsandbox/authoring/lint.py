"""Check schema files for what would fail review, CI or production, before any of them run.

Three different judges stand between a schema edit and real events, and each fails late:
jsonschema-tools' repository tests in CI, EventGate's secure-schema check when the first
event arrives (an opaque "Failed loading schema"), and reviewers who spot a `current.yaml`
changed without a version bump. `lint` asks all of their questions locally:

* the draft-07 meta-schema (`schema-is-valid`), on the materialized form;
* production's load rules (`schema-is-secure`): AJV's secure-schema meta-schema, which
  EventGate applies before compiling, reported as "production would refuse this schema";
* the repository layout (`title-matches-path`, `id-matches-path`): `title` is the directory
  path under `jsonschema/` and `$id` is `/<title>/<version>`;
* `version-bump`: a `current.yaml` whose materialization differs from the published file of
  the same version;
* `schema-examples-are-valid` and `schema-examples-$schema-matches-schema-$id`;
* the robustness rules of jsonschema-tools (`schema-snake-case-properties`,
  `schema-required-properties-exist`, `schema-enforced-numeric-bounds`,
  `schema-deterministic-types`), honouring `skipSchemaTestCases` of the repository's
  `.jsonschema-tools.yaml` as its CI does. Production's and the layout's rules are never
  skipped: EventGate does not read that file.

Rules named like jsonschema-tools' test cases are its test cases, so a finding can be
matched against a skip list by name.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft7Validator

from mpsandbox.authoring.bounds import bounds_problems
from mpsandbox.authoring.materialize import AuthoringError, Built, build, equal_as_data
from mpsandbox.authoring.repo import (
    CURRENT,
    VERSION_RE,
    RepoConfig,
    Resolver,
    path_title,
    published_versions,
    read_schema_file,
    repo_root_of,
    version_from_id,
    version_key,
)
from mpsandbox.authoring.traverse import iter_subschemas, pointer_part
from mpsandbox.schemas.ajv_security import find_insecurities
from mpsandbox.schemas.sources import SchemaParseError
from mpsandbox.schemas.validator import CompiledSchema, SchemaCompileError, errors_text
from mpsandbox.wording import plural

__all__ = ["LintReport", "Problem", "lint_paths", "schema_files"]

ERROR = "error"
WARNING = "warning"
_SNAKE_CASE = re.compile(r"^[$a-z]+[a-z0-9_]*$")
_META = Draft7Validator(Draft7Validator.META_SCHEMA)
#: The same meta-schema compiled by jsonschema-rs: a fast yes, so that the detailed (and
#: twenty times slower) walk only runs for schemas that have something to report.
_META_FAST = jsonschema_rs.Draft7Validator(Draft7Validator.META_SCHEMA)


@dataclass(frozen=True)
class Problem:
    """One finding: which file, which rule, what is wrong, and whether it fails the lint."""

    path: Path
    rule: str
    message: str
    severity: str = ERROR
    pointer: str | None = None

    def line(self, base: Path | None = None) -> str:
        shown = _shown(self.path, base)
        tag = "" if self.severity == ERROR else "warning: "
        return f"{shown}: [{self.rule}] {tag}{self.message}"

    def as_dict(self, base: Path | None = None) -> dict[str, Any]:
        out = {
            "path": _shown(self.path, base),
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
        }
        if self.pointer is not None:
            out["pointer"] = self.pointer
        return out


def _shown(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            pass
    return str(path)


@dataclass
class LintReport:
    files: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARNING]

    def summary(self) -> str:
        e, w = len(self.errors), len(self.warnings)
        return (
            f"{plural(len(self.files), 'schema file')} checked: "
            f"{plural(e, 'error')}, {plural(w, 'warning')}"
        )

    def as_dict(self, base: Path | None = None) -> dict[str, Any]:
        return {
            "files": len(self.files),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "problems": [p.as_dict(base) for p in self.problems],
        }


def _is_versioned(path: Path) -> bool:
    stem, _, ext = path.name.rpartition(".")
    return ext in ("yaml", "json") and VERSION_RE.match(stem) is not None


def schema_files(target: Path) -> list[Path]:
    """The `current.yaml` and `X.Y.Z.yaml|json` files a lint argument names (links skipped:
    `X.Y.Z`, `latest` and `latest.yaml` only repeat a versioned file)."""
    if target.is_file():
        return [target]
    found = [
        p
        for p in target.rglob("*")
        if p.is_file() and not p.is_symlink() and (p.name == CURRENT or _is_versioned(p))
    ]
    return sorted(found, key=lambda p: (p.parent.as_posix(), p.name != CURRENT, p.name))


class _Linter:
    def __init__(self, resolver: Resolver):
        self.resolver = resolver
        self.report = LintReport()
        self._configs: dict[Path | None, RepoConfig] = {}
        self._parsed: dict[Path, Any] = {}

    def add(self, path: Path, rule: str, message: str, **kw: Any) -> None:
        self.report.problems.append(Problem(path, rule, message, **kw))

    def read(self, path: Path) -> Any:
        """Each file is parsed once per run (a published file is read again to compare)."""
        key = path.resolve()
        if key not in self._parsed:
            self._parsed[key] = read_schema_file(path)
        return self._parsed[key]

    def config(self, repo_root: Path | None) -> RepoConfig:
        if repo_root not in self._configs:
            self._configs[repo_root] = RepoConfig.for_repo(repo_root)
        return self._configs[repo_root]

    # -- per file ------------------------------------------------------------------------

    def lint_file(self, path: Path) -> None:
        self.report.files.append(path)
        try:
            schema = self.read(path)
        except SchemaParseError as exc:
            self.add(path, "parse", exc.message + (f" (line {exc.line})" if exc.line else ""))
            return
        if not isinstance(schema, dict):
            self.add(path, "parse", "the file does not hold a schema (a YAML mapping)")
            return
        repo_root = repo_root_of(path.parent)
        if path.name == CURRENT:
            self.lint_current(path, schema, repo_root)
        else:
            self.check_layout(path, schema, repo_root, version=path.name.rsplit(".", 1)[0])
            self.check_materialized(path, schema, repo_root)

    def lint_current(self, path: Path, raw: dict, repo_root: Path | None) -> None:
        version = version_from_id(raw.get("$id"))
        self.check_layout(path, raw, repo_root, version=version)
        try:
            built = build(path, self.resolver)
        except AuthoringError as exc:
            message = str(exc).removeprefix(f"{path}: ")
            self.add(path, "materialize", f"cannot be materialized: {message}")
            return
        published = self.published(path, built)
        if published is None:
            self.check_materialized(path, built.schema, repo_root)

    def published(self, path: Path, built: Built) -> dict | None:
        """Compare with the published file of the same version; return it when they agree.

        The published file is then linted on its own, so its findings are not repeated here.
        """
        folder = path.parent
        versions = published_versions(folder)
        latest = versions[-1] if versions else None
        mine = built.version
        same = folder / f"{mine}.yaml"
        if not same.exists():
            if latest is not None and version_key(mine) < version_key(latest):
                self.add(
                    path,
                    "version-bump",
                    f"$id version {mine} is older than the latest published {latest}",
                )
            else:
                self.add(
                    path,
                    "not-materialized",
                    f"version {mine} is not materialized yet: run "
                    f"`mpsandbox schema materialize {folder}`",
                    severity=WARNING,
                )
            return None
        try:
            existing = self.read(same)
        except SchemaParseError:
            return None
        if equal_as_data(existing, built.schema, ignore_examples=built.examples_generated):
            return existing
        if mine == latest:
            self.add(
                path,
                "version-bump",
                f"changed without a version bump: its materialization differs from "
                f"{same.name}, the published {mine}; bump the version in $id "
                f"(e.g. /{built.title}/{_bumped(mine)}) and materialize",
            )
        else:
            self.add(
                path,
                "version-bump",
                f"$id names {mine}, which is published (not the latest, {latest}) with "
                f"different content; set $id to a new version",
            )
        return None

    # -- rules ---------------------------------------------------------------------------

    def check_meta(self, path: Path, schema: dict) -> None:
        if _META_FAST.is_valid(schema):
            return
        for error in sorted(_META.iter_errors(schema), key=lambda e: list(e.absolute_path)):
            pointer = "".join(pointer_part(p) for p in error.absolute_path)
            self.add(
                path,
                "schema-is-valid",
                f"not a valid draft-07 schema at {pointer or '/'}: {error.message}",
                pointer=pointer,
            )

    def check_layout(
        self, path: Path, schema: dict, repo_root: Path | None, *, version: str | None
    ) -> None:
        if repo_root is None:
            self.add(
                path,
                "layout",
                "not inside a jsonschema/ directory, so title and $id cannot be checked "
                "against the path",
                severity=WARNING,
            )
            return
        expected_title = path_title(path.parent, repo_root)
        title = schema.get("title")
        if title != expected_title:
            self.add(
                path,
                "title-matches-path",
                f"title is {title!r} but the directory says {expected_title!r} "
                "(stream configs match schemas by this title)",
            )
        schema_id = schema.get("$id")
        if version is None:
            self.add(path, "id-matches-path", f"$id {schema_id!r} names no version")
            return
        expected_id = f"/{expected_title}/{version}"
        if schema_id != expected_id:
            where = "the directory" if path.name == CURRENT else "the path"
            self.add(
                path,
                "id-matches-path",
                f"$id is {schema_id!r} but {where} says {expected_id!r}",
            )

    def check_materialized(self, path: Path, schema: dict, repo_root: Path | None) -> None:
        """The rules that judge a schema as production would load it.

        A `current.yaml` is judged by its materialization: before dereferencing, `$ref`s
        stand where the meta-schema wants a map or a list (jsonschema-tools skips it too).
        """
        self.check_meta(path, schema)
        for found in find_insecurities(schema):
            self.add(
                path,
                "schema-is-secure",
                f"production would refuse this schema: {found.pointer or '/'} "
                f"{found.explanation} (AJV secure-schema rule: {found.rule})",
                pointer=found.pointer,
            )
        schema_id = schema.get("$id") if isinstance(schema.get("$id"), str) else ""
        config = self.config(repo_root)

        def skipped(case: str) -> bool:
            return config.skips(schema_id, case)

        self.check_examples(path, schema, skipped)
        if not skipped("schema-snake-case-properties"):
            for pointer, node in iter_subschemas(schema):
                for name in node.get("properties") or {}:
                    if not _SNAKE_CASE.match(str(name)):
                        self.add(
                            path,
                            "schema-snake-case-properties",
                            f"property {name!r} at {pointer or '/'} is not snake_case",
                            pointer=f"{pointer}/properties{pointer_part(name)}",
                        )
        if not skipped("schema-required-properties-exist"):
            for pointer, node in iter_subschemas(schema):
                declared = node.get("properties") or {}
                for name in node.get("required") or []:
                    if name not in declared:
                        self.add(
                            path,
                            "schema-required-properties-exist",
                            f"{pointer or '/'} requires {name!r}, which it does not declare",
                            pointer=pointer,
                        )
        if not skipped("schema-enforced-numeric-bounds"):
            for pointer, message in bounds_problems(schema):
                self.add(
                    path,
                    "schema-enforced-numeric-bounds",
                    f"{pointer or '/'}: {message} (materializing adds safe bounds)",
                    pointer=pointer,
                )
        if not skipped("schema-deterministic-types"):
            for pointer, message in _nondeterministic_types(schema):
                self.add(
                    path,
                    "schema-deterministic-types",
                    f"{pointer or '/'}: {message}",
                    pointer=pointer,
                )

    def check_examples(self, path: Path, schema: dict, skipped: Any) -> None:
        examples = schema.get("examples")
        if not isinstance(examples, list) or not examples:
            return
        if "$schema" in (schema.get("properties") or {}) and not skipped(
            "schema-examples-$schema-matches-schema-$id"
        ):
            for i, example in enumerate(examples):
                if isinstance(example, dict) and example.get("$schema") != schema.get("$id"):
                    self.add(
                        path,
                        "schema-examples-$schema-matches-schema-$id",
                        f"example {i} has $schema {example.get('$schema')!r}, "
                        f"not the schema's $id {schema.get('$id')!r}",
                    )
        if skipped("schema-examples-are-valid"):
            return
        try:
            compiled = CompiledSchema(schema, secure=False)
        except SchemaCompileError:
            return  # the meta-schema finding already says why
        for i, example in enumerate(examples):
            errors = compiled.errors(copy.deepcopy(example))
            if errors:
                self.add(
                    path,
                    "schema-examples-are-valid",
                    f"example {i} does not validate: {errors_text(errors)}",
                    pointer=f"/examples/{i}",
                )


def _nondeterministic_types(schema: Any, pointer: str = "") -> list[tuple[str, str]]:
    """jsonschema-tools' "deterministic types" rule: one type per field, typed array items
    and map values, objects that say what they hold."""
    out: list[tuple[str, str]] = []
    if not isinstance(schema, dict):
        return out
    kind = schema.get("type")
    if isinstance(kind, list):
        out.append((pointer, f"has several types {kind} (a union)"))
    if kind == "array":
        items = schema.get("items")
        if not isinstance(items, dict) or "type" not in items:
            out.append((pointer, "an array must say its items' type"))
        else:
            out += _nondeterministic_types(items, pointer + "/items")
    if kind == "object":
        extra = schema.get("additionalProperties")
        shaped = any(k in schema for k in ("properties", "oneOf", "allOf"))
        if not shaped and not extra:
            out.append((pointer, "an object must have properties or additionalProperties"))
        if isinstance(extra, dict):
            out += _nondeterministic_types(extra, pointer + "/additionalProperties")
    for name, sub in (schema.get("properties") or {}).items():
        at = f"{pointer}/properties{pointer_part(name)}"
        if not isinstance(sub, dict) or "type" not in sub:
            out.append((at, "has no type"))
        else:
            out += _nondeterministic_types(sub, at)
    for sub in schema.get("allOf") or []:
        out += _nondeterministic_types(sub, pointer)
    one_of = schema.get("oneOf") or []
    if one_of:
        types = {str(s.get("type")) for s in one_of if isinstance(s, dict)}
        if len(types) > 1:
            out.append((pointer, "oneOf mixes types"))
        for sub in one_of:
            out += _nondeterministic_types(sub, pointer)
    return out


def _bumped(version: str) -> str:
    major, minor, patch = version_key(version)
    return f"{major}.{minor}.{patch + 1}"


def lint_paths(targets: list[Path], resolver: Resolver) -> LintReport:
    """Lint every schema file the targets name (files, schema directories, repositories)."""
    linter = _Linter(resolver)
    seen: set[Path] = set()
    for target in targets:
        if not target.exists():
            linter.add(target, "parse", "no such file or directory")
            continue
        for path in schema_files(target):
            real = path.resolve()
            if real not in seen:
                seen.add(real)
                linter.lint_file(path)
    return linter.report
