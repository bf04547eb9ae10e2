"""The config: one source of defaults (the schema), tiers as overlays on config.yaml, and validation
before any job runs."""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from roboscape.data.clips import ClipConfig
from roboscape.data.token_windows import WorldModelData
from roboscape.eval.policy_drift import DriftConfig
from roboscape.eval.world_model_eval import EvalConfig
from roboscape.models.reward_models import RewardModelConfig
from roboscape.models.tokenizer import TokenizerConfig
from roboscape.models.world_model import WorldModelConfig
from roboscape.policy.mlp import MLPPolicyConfig
from roboscape.policy.openvla import OpenVLAPolicyConfig
from roboscape.rl.goals import GoalConfig
from roboscape.rl.maniskill import SimEnvConfig
from roboscape.rl.ppo import PPOArgs
from roboscape.rl.world_model_env import RewardConfig, WMEnvConfig
from roboscape.sim.catalogue import TaskParams
from roboscape.sim.generator import GeneratorConfig
from roboscape.train.reward_training import RewardData
from roboscape.train.tokenizer_training import TokenizerRun
from roboscape.train.trainer import TrainConfig

from snakemake_helpers import REPO, merged, snakemake, tiny_config

sys.path.insert(0, str(REPO / "workflow" / "schemas"))
from configuration import keys, load_schema, markdown, resolve, schema_defaults  # noqa: E402

SCHEMA = load_schema()
TIERS = ["config/tiny.yaml", "config/paper.yaml", "config/openvla.yaml"]


def test_every_key_has_a_description_and_a_default():
    undocumented = [
        path
        for path, node, default in keys(SCHEMA)
        if not node.get("description") or default is None and node.get("default", "missing") == "missing"
    ]
    assert undocumented == []


def test_config_yaml_is_the_schemas_defaults():
    assert yaml.safe_load((REPO / "config.yaml").read_text()) == schema_defaults(SCHEMA)


def test_the_config_reference_is_current():
    assert (REPO / "docs" / "config.md").read_text() == markdown(SCHEMA), (
        "run: python workflow/schemas/configuration.py > docs/config.md"
    )


def _leaves(cfg: dict, prefix: str = ""):
    for key, value in cfg.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


@pytest.mark.parametrize("tier", TIERS)
def test_a_tier_holds_only_what_differs_from_config_yaml(tier):
    base = dict(_leaves(yaml.safe_load((REPO / "config.yaml").read_text())))
    overlay = dict(_leaves(yaml.safe_load((REPO / tier).read_text())))
    assert set(overlay) <= set(base), "keys that config.yaml does not have"
    assert [key for key, value in overlay.items() if base[key] == value] == []


def _section(path: str) -> dict:
    """The schema's defaults of a section, by its dotted path (``$defs.<name>`` for a definition)."""
    if path.startswith("$defs."):
        return schema_defaults(SCHEMA["$defs"][path.removeprefix("$defs.")], SCHEMA)
    node = SCHEMA
    for key in path.split("."):
        node = resolve(node, SCHEMA)["properties"][key]
    return schema_defaults(node, SCHEMA)


@pytest.mark.parametrize(
    "cls, section",
    [
        (TaskParams, "scenes.task_params"),
        (GeneratorConfig, "trajectories.generator"),
        (ClipConfig, "clips"),
        (TokenizerConfig, "tokenizer.model"),
        (TokenizerRun, "tokenizer.run"),
        (TrainConfig, "$defs.train"),
        (WorldModelConfig, "world_model.arch"),
        (WorldModelData, "world_model.data"),
        (EvalConfig, "world_model.eval"),
        (MLPPolicyConfig, "policy.arch"),
        (OpenVLAPolicyConfig, "policy.openvla"),
        (PPOArgs, "$defs.ppo"),
        (SimEnvConfig, "rl.maniskill"),
        (WMEnvConfig, "rl.world_model"),
        (RewardConfig, "rl.world_model.reward"),
        (GoalConfig, "rl.world_model.goals"),
        (RewardModelConfig, "rl.reward_models"),
        (RewardData, "world_model.data"),
        (DriftConfig, "evaluation.drift"),
    ],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_dataclass_defaults_agree_with_the_schema(cls, section):
    defaults = _section(section)
    shared = [f for f in dataclasses.fields(cls) if f.name in defaults]
    assert shared, f"{cls.__name__} shares no field with {section}"
    for f in shared:
        value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        assert (list(value) if isinstance(value, tuple) else value) == defaults[f.name], f"{cls.__name__}.{f.name}"


@pytest.mark.parametrize("tier", [None, *TIERS])
def test_every_tier_validates_and_plans(tmp_path, tier):
    if tier == "config/openvla.yaml":  # the downloaded weights, as the tier names them (a stand-in: their index)
        (tmp_path / "weights" / "openvla-7b").mkdir(parents=True)
        (tmp_path / "weights" / "openvla-7b" / "model.safetensors.index.json").write_text("{}")
    proc = snakemake(tmp_path, "-n", *(["--configfile", str(REPO / tier)] if tier else []))
    assert "Job stats" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "edit, named",
    [
        (lambda c: c["trajectories"]["generator"].update(image_sise=64), "image_sise"),
        (lambda c: c["trajectories"]["generator"].update(n_optimal="two"), "n_optimal"),
        (lambda c: c["clips"].update(clip_length=1), "clip_length"),
        (lambda c: c["rl"].update(runs=0), "runs"),
        (lambda c: c["scenes"].update(tasks=["pick_place", "juggle"]), "juggle"),
        (lambda c: c.update(colour="red"), "colour"),
        (lambda c: c["world_model"]["text"].update(trajectory_labels=["golden"]), "golden"),
        (lambda c: c["world_model"]["text"].update(init_from="text"), "init_from"),
        (lambda c: c["world_model"]["guidance"].update(action_dropout=0.0, scale=2.0), "world_model.guidance.scale"),
        (lambda c: c["rl"]["world_model"]["goals"].update(guidance=2.0), "rl.world_model.goals.guidance"),
        (lambda c: c["scenes"].update(split_seed=3), "scenes.multitask"),  # the green bell pepper is then unseen
        (lambda c: c["scenes"]["multitask"].update(objects=["pepper"]), "pepper"),
        (lambda c: c["scenes"].update(n_ind=1), "n_ind must be at least 2"),
        (lambda c: c["policy"].update(kind="openvla"), "policy.openvla.weights: OpenVLA-7B needs its pretrained"),
        (
            lambda c: c["policy"].update(kind="openvla", openvla={**c["policy"]["openvla"], "weights": "/no/vla"}),
            "/no/vla",
        ),
    ],
    ids=[
        "unknown-key",
        "wrong-type",
        "out-of-range",
        "no-rl-runs",
        "unknown-task",
        "unknown-top-level-key",
        "unknown-trajectory-label",
        "warm-start-from-itself",
        "guidance-without-action-dropout",
        "goal-guidance-without-text-dropout",
        "multitask-scene-out-of-domain",
        "multitask-unknown-object",
        "multitask-scenes-beyond-n-ind",
        "openvla-7b-without-weights",
        "openvla-weights-not-there",
    ],
)
def test_malformed_config_is_rejected_naming_the_key(tmp_path, edit, named):
    cfg = tiny_config()
    edit(cfg)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "bad.yaml"), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "ValidationError" in out or "validat" in out.lower()
    assert named in out
    assert not (tmp_path / "results").exists(), "nothing may run before the config is valid"


def test_a_key_missing_from_config_yaml_is_rejected_naming_it(tmp_path):
    """An overlay cannot remove a key; an edited config.yaml can."""
    workdir = tmp_path / "workflow"
    shutil.copytree(
        REPO, workdir, ignore=shutil.ignore_patterns(".git", ".venv", "results", ".snakemake", "__pycache__")
    )
    cfg = yaml.safe_load((workdir / "config.yaml").read_text())
    del cfg["scenes"]["n_ind"]
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(workdir, "-n", check=False)
    assert proc.returncode != 0 and "n_ind" in proc.stdout + proc.stderr


def test_merged_is_snakemakes_overlay():
    assert merged({"a": {"b": 1, "c": [1, 2]}, "d": 0}, {"a": {"c": [3]}}) == {"a": {"b": 1, "c": [3]}, "d": 0}
    assert tiny_config()["outdir"] == "results/tiny" and tiny_config()["seed"] == 0
    assert Path(REPO / "config" / "tiny.yaml").exists()
