#!/usr/bin/env python3
"""Checks the protocol's JSON Schemas (protocol/schemas): each is valid draft 2020-12, every `$ref` resolves, the README
lists exactly the schema files, and the examples in protocol/schemas/examples/<name>.json (`{"valid": [...],
"invalid": [...]}`) pass and fail as they say. Needs the `jsonschema` package (scripts/setup installs it).

Usage: python3 protocol/conformance/check_schemas.py [-v]. The last line is `N passed, N failed`; the exit status is 0
only when nothing failed and something passed.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "protocol" / "schemas"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
SUFFIX = ".schema.json"
# Keywords that make a schema more than a bag of $defs (only such schemas validate instances and need examples).
ANNOTATIONS_ONLY = {"$schema", "$id", "$defs", "$comment", "title", "description"}


class MissingDependency(RuntimeError):
    pass


def _jsonschema():
    """Imports jsonschema and referencing, or says what to install: a missing package must never look like a pass."""
    try:
        import jsonschema
        import referencing
        import referencing.exceptions
    except ImportError as error:
        raise MissingDependency(
            f"the `jsonschema` Python package is required ({error}): run scripts/setup or "
            "`python3 -m pip install jsonschema`") from None
    return jsonschema, referencing


def schema_name(path: Path) -> str:
    """`facebook.post.params.schema.json` → `facebook.post.params` (also the examples file's stem)."""
    return path.name[: -len(SUFFIX)]


def method_schema_name(method: str, part: str) -> str:
    """`facebook/post`, `params` → `facebook.post.params`; `$/cancelRequest` → `$.cancelRequest`."""
    return f"{method.replace('/', '.')}.{part}"


class SchemaSet:
    """Every schema of a directory, registered by `$id` so that cross-file `$ref`s resolve without any network."""

    def __init__(self, directory: Path = SCHEMAS):
        jsonschema, referencing = _jsonschema()
        self.directory = directory
        self.documents: dict[str, dict] = {}
        for path in sorted(directory.glob("*" + SUFFIX)):
            self.documents[schema_name(path)] = json.loads(path.read_text(encoding="utf-8"))
        resources = [(doc["$id"], referencing.Resource.from_contents(doc))
                     for doc in self.documents.values() if isinstance(doc, dict) and "$id" in doc]
        self.registry = referencing.Registry().with_resources(resources)
        self._validator_class = jsonschema.Draft202012Validator
        self._validators: dict[str, Any] = {}

    def validator(self, name: str):
        if name not in self._validators:
            if name not in self.documents:
                raise KeyError(f"no schema {name}{SUFFIX} in {self.directory}")
            self._validators[name] = self._validator_class(self.documents[name], registry=self.registry)
        return self._validators[name]

    def errors(self, name: str, instance: Any) -> list[str]:
        """Why `instance` does not match schema `name` (empty when it does), one line per error."""
        found = sorted(self.validator(name).iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
        return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in found]

    def is_valid(self, name: str, instance: Any) -> bool:
        return self.validator(name).is_valid(instance)


@dataclass
class Report:
    passed: int = 0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)

    def ok(self, note: str | None = None) -> None:
        self.passed += 1
        if note:
            self.notes.append(note)

    def fail(self, message: str) -> None:
        self.failures.append(message)


def _refs(node: Any, path: str = "#"):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield path, value
            else:
                yield from _refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _refs(value, f"{path}/{index}")


def _short(instance: Any) -> str:
    text = json.dumps(instance, separators=(",", ":"))
    return text if len(text) <= 160 else text[:157] + "..."


def check(directory: Path = SCHEMAS) -> Report:
    """Runs every check; never raises for a bad schema or example, only for a missing `jsonschema`."""
    jsonschema, referencing = _jsonschema()
    report = Report()
    paths = sorted(directory.glob("*" + SUFFIX))
    if not paths:
        report.fail(f"no *{SUFFIX} files in {directory}")
        return report
    documents: dict[str, Any] = {}
    for path in paths:
        try:
            documents[schema_name(path)] = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            report.fail(f"{path.name}: not JSON: {error}")
    base = None
    for name, doc in documents.items():
        problems = []
        if not isinstance(doc, dict):
            problems.append("not a JSON object")
        else:
            if doc.get("$schema") != DRAFT_2020_12:
                problems.append(f"$schema is {doc.get('$schema')!r}, not {DRAFT_2020_12}")
            ident = doc.get("$id", "")
            if not ident.endswith("/" + name + SUFFIX):
                problems.append(f"$id {ident!r} does not end with /{name}{SUFFIX}")
            else:
                base = base or ident[: -len(name + SUFFIX)]
                if ident != base + name + SUFFIX:
                    problems.append(f"$id {ident!r} does not share the base {base!r} of the other schemas")
            try:
                jsonschema.Draft202012Validator.check_schema(doc)
            except jsonschema.SchemaError as error:
                problems.append(f"not a valid 2020-12 schema: {error.message} at {list(error.absolute_path)}")
        if problems:
            report.fail(f"{name}{SUFFIX}: " + "; ".join(problems))
        else:
            report.ok()
    try:
        schemas = SchemaSet(directory)
    except Exception as error:  # noqa: BLE001 - reported, not raised: the checker's job is to say what is wrong
        report.fail(f"cannot register the schemas: {error}")
        return report

    for name, doc in schemas.documents.items():
        resolver = schemas.registry.resolver(base_uri=doc.get("$id", ""))
        unresolved = []
        for where, target in _refs(doc):
            try:
                resolver.lookup(target)
            except referencing.exceptions.Unresolvable as error:
                unresolved.append(f"{where} → {target} ({type(error).__name__})")
        if unresolved:
            report.fail(f"{name}{SUFFIX}: unresolvable $ref: " + "; ".join(unresolved))
        else:
            report.ok()

    _check_readme(directory, set(documents), report)

    examples_dir = directory / "examples"
    example_files = {p.stem: p for p in sorted(examples_dir.glob("*.json"))}
    for stem in sorted(set(example_files) - set(documents)):
        report.fail(f"examples/{stem}.json: there is no schema {stem}{SUFFIX}")
    for name, doc in schemas.documents.items():
        needs_examples = isinstance(doc, dict) and set(doc) - ANNOTATIONS_ONLY
        if name not in example_files:
            if needs_examples:
                report.fail(f"{name}{SUFFIX}: no examples/{name}.json")
            continue
        try:
            examples = json.loads(example_files[name].read_text(encoding="utf-8"))
        except ValueError as error:
            report.fail(f"examples/{name}.json: not JSON: {error}")
            continue
        if not (isinstance(examples, dict) and set(examples) == {"valid", "invalid"}
                and all(isinstance(examples[k], list) and examples[k] for k in ("valid", "invalid"))):
            report.fail(f"examples/{name}.json: must be {{\"valid\": [...], \"invalid\": [...]}}, both non-empty")
            continue
        for side in ("valid", "invalid"):
            for index, instance in enumerate(examples[side]):
                where = f"{name}: {side}[{index}] {_short(instance)}"
                try:
                    errors = schemas.errors(name, instance)
                except Exception as error:  # noqa: BLE001 - e.g. an unresolvable $ref deep inside
                    report.fail(f"{where}: validation crashed: {type(error).__name__}: {str(error)[:200]}")
                    continue
                if side == "valid" and errors:
                    report.fail(f"{where} is refused: " + "; ".join(errors[:3]))
                elif side == "invalid" and not errors:
                    report.fail(f"{where} is accepted")
                else:
                    report.ok(f"{name}: {side}[{index}] " + (f"refused: {errors[0]}" if errors else "accepted"))
    return report


def _check_readme(directory: Path, names: set[str], report: Report) -> None:
    readme = directory / "README.md"
    if not readme.exists():
        report.fail("README.md is missing")
        return
    text = readme.read_text(encoding="utf-8")
    missing = sorted(n + SUFFIX for n in names if f"`{n}{SUFFIX}`" not in text)
    listed = set(re.findall(r"`([\w.$-]+" + re.escape(SUFFIX) + r")`", text))
    stale = sorted(listed - {n + SUFFIX for n in names})
    if missing or stale:
        report.fail("README.md: " + "; ".join(
            ([f"does not list {', '.join(missing)}"] if missing else [])
            + ([f"lists missing files {', '.join(stale)}"] if stale else [])))
    else:
        report.ok()


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    try:
        report = check()
    except MissingDependency as error:
        print(f"check_schemas: {error}", file=sys.stderr)
        print("0 passed, 1 failed")
        return 2
    for line in report.failures:
        print(f"FAIL {line}")
    if verbose:
        for line in report.notes:
            print(f"ok   {line}")
    print(f"{report.passed} passed, {report.failed} failed")
    return 0 if report.passed and not report.failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
