"""The paper's Figures 2, 4 and 5 as files: PNG and PDF (the same figure gives the same PDF bytes)
and the rollouts' GIF."""

from __future__ import annotations

import imageio.v2 as imageio
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes

from roboscape.report.learning_curves import learning_curves
from roboscape.report.policy_figures import Rollout, rollout_comparison


def rollouts(T: int = 5) -> dict:
    rng = np.random.default_rng(0)
    frames = lambda: rng.integers(0, 255, (T, 16, 16, 3), dtype=np.uint8)  # noqa: E731
    return {
        task: {m: Rollout(frames(), ok, f"{task}/s") for m, ok in (("sft", False), ("rl_world_model", True))}
        for task in ("push", "pull")
    }


def test_rollouts_side_by_side(tmp_path):
    out = {ext: tmp_path / f"f.{ext}" for ext in ("png", "pdf", "gif")}
    rollout_comparison(rollouts(), out["png"], out["pdf"], out["gif"], "Figure 4")
    assert out["png"].read_bytes().startswith(b"\x89PNG") and out["pdf"].read_bytes().startswith(b"%PDF")
    gif = imageio.mimread(out["gif"])
    assert len(gif) == 5 and gif[0].shape[:2] == (2 * 16, 2 * 16)  # tasks as rows, methods as columns
    first = out["pdf"].read_bytes()
    rollout_comparison(rollouts(), out["png"], out["pdf"], out["gif"], "Figure 4")
    assert out["pdf"].read_bytes() == first
    with pytest.raises(ValueError, match="no rollouts"):
        rollout_comparison({}, out["png"], out["pdf"], out["gif"], "Figure 4")


def test_a_task_with_fewer_methods_leaves_its_row_of_the_gif_black_past_them(tmp_path):
    """A learned-reward baseline runs on some tasks only."""
    out = {ext: tmp_path / f"f.{ext}" for ext in ("png", "pdf", "gif")}
    uneven = rollouts()
    del uneven["pull"]["rl_world_model"]
    rollout_comparison(uneven, out["png"], out["pdf"], out["gif"], "Figure 4")
    frame = imageio.mimread(out["gif"])[0]
    assert frame.shape[:2] == (2 * 16, 2 * 16)
    assert frame[16:, 16:].max() == 0 and frame[:16, 16:].max() > 0  # pull's missing method, push's present one


@pytest.mark.parametrize("runs", [1, 3])
def test_learning_curves_plot_every_method_task_and_domain(tmp_path, monkeypatch, runs):
    lines = []
    plot = Axes.plot
    monkeypatch.setattr(Axes, "plot", lambda self, *a, **k: lines.append(k) or plot(self, *a, **k))
    points = pd.DataFrame(
        [
            {"method": m, "task": "pick_place", "domain": d, "update": u, "env_steps": 100 * u,
             "wall_time_s": 60.0 * u, "episodes": 8, "successes": u, "success_rate": u / 8,
             "ci95_low": max(0, u / 8 - 0.2), "ci95_high": min(1, u / 8 + 0.2), "runs": runs,
             "run_success_rates": ";".join(f"{u / 8 + 0.1 * r:.4f}" for r in range(runs))}
            for m in ("rl_maniskill", "rl_world_model", "rl_world_model_proxy")
            for d in ("ind", "ood")
            for u in (0, 2, 4)
        ]
    )  # fmt: skip
    png, pdf = tmp_path / "c.png", tmp_path / "c.pdf"
    learning_curves(points, png, pdf)
    assert png.stat().st_size > 10_000 and pdf.read_bytes().startswith(b"%PDF")
    # a line per method in each of 2 domains x 2 axes, and with several runs a thin line per run beside it
    assert len(lines) == 3 * 2 * 2 * (1 + (runs if runs > 1 else 0))
    with pytest.raises(ValueError, match="no learning-curve points"):
        learning_curves(points.iloc[:0], png, pdf)
