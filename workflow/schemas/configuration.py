"""The configuration as data: the schema's defaults (what config.yaml must be), its documentation,
and a tier's overlay merged over config.yaml as Snakemake merges ``--configfile``.

``python workflow/schemas/configuration.py > docs/config.md`` regenerates the config reference
(a test checks that it is current). A shared definition (``$defs``) carries generic defaults; the
key that uses it may give a ``default`` object of its own, merged over them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

SCHEMA = Path(__file__).with_name("config.schema.yaml")
CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"


def load_schema(path: str | Path = SCHEMA) -> dict:
    return yaml.safe_load(Path(path).read_text())


def resolve(node: dict, schema: dict) -> dict:
    """``node`` with its ``$ref`` replaced by the definition (the node's own keys win)."""
    if "$ref" not in node:
        return node
    name = node["$ref"].removeprefix("#/$defs/")
    return {**resolve(schema["$defs"][name], schema), **{k: v for k, v in node.items() if k != "$ref"}}


def merged(base: dict, overlay: dict) -> dict:
    """``overlay`` merged over ``base`` key by key, as Snakemake merges ``--configfile`` over the
    Snakefile's ``configfile`` (a list or a scalar is replaced whole)."""
    out = dict(base)
    for key, value in overlay.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def tier_config(overlay: str | Path | None = None) -> dict:
    """The configuration a tier runs with: config.yaml, with the tier's overlay merged over it."""
    base = yaml.safe_load(CONFIG.read_text())
    return merged(base, yaml.safe_load(Path(overlay).read_text())) if overlay else base


def schema_defaults(node: dict, schema: dict | None = None) -> object:
    """The configuration the schema's defaults make (an object's keys in the schema's order)."""
    schema = schema or node
    node = resolve(node, schema)
    if node.get("type") == "object" and "properties" in node:
        built = {key: schema_defaults(sub, schema) for key, sub in node["properties"].items()}
        return merged(built, node.get("default", {}))
    return node.get("default")


def keys(node: dict, schema: dict | None = None, prefix: str = "") -> Iterator[tuple[str, dict, object]]:
    """Every key below ``node``, depth first: (dotted path, its resolved schema, its default)."""
    schema = schema or node
    defaults = schema_defaults(node, schema)
    for key, sub in resolve(node, schema).get("properties", {}).items():
        path = f"{prefix}{key}"
        resolved = resolve(sub, schema)
        yield path, resolved, defaults[key]
        if resolved.get("type") == "object":
            yield from keys({**resolved, "default": defaults[key]}, schema, prefix=f"{path}.")


def _allowed(node: dict) -> str:
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    if "oneOf" in node:
        return " or ".join(_allowed(n) if "enum" in n else n.get("type", "") for n in node["oneOf"])
    kind = node.get("type", "")
    if kind == "array" and "enum" in node.get("items", {}):
        return "list of " + _allowed(node["items"])
    bounds = [
        f"{op} {node[k]}"
        for k, op in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"))
        if k in node
    ]
    return " ".join([kind, *bounds]).strip()


def markdown(schema: dict) -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from `workflow/schemas/config.schema.yaml` by `python workflow/schemas/configuration.py`; do not",
        "edit. The defaults are the default experiment, `config.yaml`. `config/tiny.yaml` and `config/paper.yaml`",
        "are overlays: `--configfile` merges one over `config.yaml`, key by key (a list is replaced whole).",
        "",
        "| key | default | allowed | what it is |",
        "| --- | --- | --- | --- |",
    ]
    for path, node, default in keys(schema):
        shown = (
            "" if node.get("type") == "object" else f"`{default if isinstance(default, str) else json.dumps(default)}`"
        )
        title = f"**{path}**" if node.get("type") == "object" else f"`{path}`"
        allowed = "" if node.get("type") == "object" else _allowed(node)
        lines.append(f"| {title} | {shown} | {allowed} | {node.get('description', '')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown(load_schema()))
