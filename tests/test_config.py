"""The config is validated against the schema before any job runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from snakemake_helpers import REPO, snakemake


@pytest.mark.parametrize("tier", ["config.yaml", "config/tiny.yaml", "config/paper.yaml"])
def test_every_tier_validates_and_plans(tmp_path, tier):
    proc = snakemake(tmp_path, "-n", "--configfile", str(REPO / tier))
    assert "Job stats" in proc.stdout + proc.stderr


def _bad_config(tmp_path: Path, edit) -> Path:
    cfg = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())
    edit(cfg)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize(
    "edit, named",
    [
        (lambda c: c["trajectories"].update(image_sise=64), "image_sise"),
        (lambda c: c["trajectories"].update(n_optimal="two"), "n_optimal"),
        (lambda c: c["clips"].update(clip_length=1), "clip_length"),
        (lambda c: c["scenes"].update(tasks=["pick_place", "juggle"]), "juggle"),
        (lambda c: c.update(colour="red"), "colour"),
        (lambda c: c["scenes"].pop("n_ind"), "n_ind"),
        (lambda c: c["world_model"]["text"].update(trajectory_labels=["golden"]), "golden"),
        (lambda c: c["world_model"]["text"].update(init_from="text"), "init_from"),
    ],
    ids=["unknown-key", "wrong-type", "out-of-range", "unknown-task", "unknown-top-level-key", "missing-key",
         "unknown-trajectory-label", "warm-start-from-itself"],
)
def test_malformed_config_is_rejected_naming_the_key(tmp_path, edit, named):
    bad = _bad_config(tmp_path, edit)
    proc = snakemake(tmp_path, "-n", "--configfile", str(bad), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "ValidationError" in out or "validat" in out.lower()
    assert named in out
    assert not (tmp_path / "results").exists(), "nothing may run before the config is valid"
