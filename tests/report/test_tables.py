"""Table 1 from evaluation episodes: our cells, the paper's beside them, and RL against SFT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from roboscape.report.tables import (
    clustered_bootstrap_difference,
    table1,
    table1_latex,
    table1_markdown,
    table2,
    table2_latex,
    table2_markdown,
)

PAPER = pd.read_csv(Path(__file__).parents[2] / "workflow" / "resources" / "paper" / "table1.csv")
PAPER2 = pd.read_csv(Path(__file__).parents[2] / "workflow" / "resources" / "paper" / "table2.csv")


def episodes(
    method: str, rates: dict[tuple[str, str], float], n: int = 20, scenes: int = 4, run: int = 0
) -> pd.DataFrame:
    """``n`` episodes per (task, domain) cell of one training run, the first ``rate * n`` solved, over
    ``scenes`` scenes."""
    rows = []
    for (task, domain), rate in rates.items():
        for i in range(n):
            rows.append(
                {
                    "task": task,
                    "domain": domain,
                    "scene_id": f"{task}/s{i % scenes}",
                    "success_once": i < round(rate * n),
                    "success_at_end": i < round(rate * n) // 2,
                    "method": method,
                    "run": run,
                }
            )
    return pd.DataFrame(rows)


CELLS = [("push", "ind"), ("push", "ood"), ("pull", "ind"), ("pull", "ood")]


def test_cells_carry_rates_intervals_counts_and_the_paper_beside_them():
    eps = {
        "sft": episodes("sft", dict.fromkeys(CELLS, 0.25)),
        "rl_maniskill": episodes("rl_maniskill", dict.fromkeys(CELLS, 0.5)),
        "rl_world_model_proxy": episodes("rl_world_model_proxy", dict.fromkeys(CELLS, 0.25)),
    }
    t = table1(eps, PAPER, "mlp", samples=2000)
    run = t[t["status"] == "run"].set_index(["method", "task", "domain"])
    cell = run.loc[("sft", "push", "ind")]
    assert (cell["episodes"], cell["successes"], cell["success_pct"]) == (20, 5, 25.0)
    assert cell["ci95_low_pct"] < 25 < cell["ci95_high_pct"] and cell["success_at_end_pct"] == 10.0
    assert cell["paper_success_pct"] == 84.5 and cell["difference_from_paper_pct"] == pytest.approx(25 - 84.5)
    assert np.isnan(cell["vs_sft_pct"])  # SFT is the reference
    rl = run.loc[("rl_maniskill", "pull", "ood")]
    assert rl["paper_success_pct"] == 15.5 and rl["vs_sft_pct"] == pytest.approx(25.0)
    assert rl["vs_sft_ci95_low_pct"] < 25 < rl["vs_sft_ci95_high_pct"] and 0 <= rl["vs_sft_p"] <= 1
    assert np.isnan(run.loc[("rl_world_model_proxy", "push", "ind")]["paper_success_pct"])  # not in the paper
    assert set(run.index.get_level_values("task")) == {"push", "pull"}
    not_run = t[t["status"] == "not run"]
    assert set(not_run["policy"]) == {"openvla"} and set(not_run["task"]) == {"push", "pull"}
    assert len(not_run) == 3 * 4  # the paper's three OpenVLA methods x our tasks x domains
    again = table1(eps, PAPER, "mlp", samples=2000)
    pd.testing.assert_frame_equal(t, again)  # the same episodes give the same table


def test_an_openvla_run_fills_the_openvla_rows_beside_the_papers_openvla_numbers():
    eps = {m: episodes(m, dict.fromkeys(CELLS, 0.5)) for m in ("sft", "rl_maniskill", "rl_world_model")}
    t = table1(eps, PAPER, "openvla", samples=500)
    run = t[t["status"] == "run"].set_index(["method", "task", "domain"])
    assert set(run["policy"]) == {"openvla"}
    assert run.loc[("sft", "push", "ind")]["paper_success_pct"] == 94.4  # the paper's OpenVLA SFT, not its MLP's
    assert set(t[t["status"] == "not run"]["policy"]) == {"mlp"}
    assert "| MLP Supervised Finetune | not run (paper 84.5)" in table1_markdown(t, "the MLP runs elsewhere")


def test_a_method_run_on_some_tasks_fills_only_their_cells():
    eps = {
        "sft": episodes("sft", dict.fromkeys(CELLS, 0.5)),
        "rl_world_model_proxy": episodes("rl_world_model_proxy", {("push", "ind"): 0.5, ("push", "ood"): 0.5}),
    }
    t = table1(eps, PAPER, "mlp", samples=500)
    proxy = t[(t["status"] == "run") & (t["method"] == "rl_world_model_proxy")]
    assert set(proxy["task"]) == {"push"} and len(proxy) == 2
    row = next(line for line in table1_markdown(t, "-").splitlines() if line.startswith("| MLP RL w. World Model"))
    assert row.count("|  |") == 2  # the two Pull cells are empty, not zeros


def test_the_bootstrap_finds_a_clear_difference_and_no_difference_where_there_is_none():
    sft = episodes("sft", {("push", "ood"): 0.1}, n=40)
    better = episodes("rl", {("push", "ood"): 0.9}, n=40)
    d, low, high, p = clustered_bootstrap_difference(better, sft, samples=4000)
    assert d == pytest.approx(80.0) and 50 < low < 80 < high and p < 0.01
    d, low, high, p = clustered_bootstrap_difference(sft, sft, samples=4000)
    assert d == 0 and low < 0 < high and p > 0.5
    # one scene holding every success: resampling scenes widens the interval
    clumped = better.assign(success_once=better["scene_id"] == "push/s0")
    spread = better.assign(success_once=np.arange(len(better)) < 10)  # the same 10 successes over 4 scenes
    wide = clustered_bootstrap_difference(clumped, sft, samples=4000)
    narrow = clustered_bootstrap_difference(spread, sft, samples=4000)
    assert wide[2] - wide[1] > 1.5 * (narrow[2] - narrow[1])


def runs(method: str, rates: list[float], cell=("push", "ood"), n: int = 40) -> pd.DataFrame:
    """One cell's episodes from several training runs, run k solving ``rates[k]`` of them."""
    return pd.concat([episodes(method, {cell: r}, n=n, run=k) for k, r in enumerate(rates)], ignore_index=True)


def test_the_bootstrap_resamples_training_runs_before_scenes():
    sft = episodes("sft", {("push", "ood"): 0.3}, n=40)
    # the same pooled episodes (30 of 90 solved), from one lucky run or from three runs alike
    lucky, alike = runs("rl", [0.1, 0.1, 0.8], n=30), runs("rl", [1 / 3, 1 / 3, 1 / 3], n=30)
    pooled = lucky.assign(run=0)  # the lucky run's episodes taken as one run's
    a, b, c = (clustered_bootstrap_difference(e, sft, samples=4000) for e in (lucky, alike, pooled))
    assert a[0] == b[0] == c[0] == pytest.approx(100 / 3 - 30)
    assert a[2] - a[1] > 1.5 * (b[2] - b[1]) and a[2] - a[1] > 1.5 * (c[2] - c[1])
    # a clear difference in every run stays clear
    d, low, _, p = clustered_bootstrap_difference(runs("rl", [0.9, 0.85, 0.95]), sft, samples=4000)
    assert d == pytest.approx(60.0) and low > 40 and p < 0.01
    # one run: the scene and episode bootstrap, draw for draw, whatever the run is called
    one = episodes("rl", {("push", "ood"): 0.6}, n=40)
    got = clustered_bootstrap_difference(one, sft, 2000, 3)
    assert got == clustered_bootstrap_difference(one.assign(run=7), sft, 2000, 3)
    rng = np.random.default_rng(3)
    plain = [scene_and_episode_draws(e, rng, 2000) for e in (one, sft)]
    assert got[1:3] == pytest.approx(tuple(np.percentile(100 * (plain[0] - plain[1]), [2.5, 97.5])))


def scene_and_episode_draws(rows: pd.DataFrame, rng: np.random.Generator, samples: int) -> np.ndarray:
    """The bootstrap of one run's success rate: its scenes with replacement, then each drawn scene's
    episodes (a binomial draw of its count at its rate)."""
    per_scene = rows.groupby("scene_id", sort=True)["success_once"].agg(["sum", "count"])
    k, n = per_scene["sum"].to_numpy(dtype=float), per_scene["count"].to_numpy()
    scenes = rng.integers(len(n), size=(samples, len(n)))
    return rng.binomial(n[scenes], k[scenes] / n[scenes]).sum(-1) / n[scenes].sum(-1)


def test_cells_pool_a_methods_runs_and_give_each_runs_rate():
    eps = {
        "sft": episodes("sft", {("push", "ood"): 0.25}),
        "rl_world_model": runs("rl_world_model", [0.1, 0.8, 0.3], n=20),
    }
    t = table1(eps, PAPER, "mlp", samples=1000)
    cell = t[(t["status"] == "run") & (t["method"] == "rl_world_model") & (t["domain"] == "ood")].iloc[0]
    assert (cell["episodes"], cell["successes"], cell["runs"], cell["run_success_pct"]) == (60, 24, 3, "10.0;80.0;30.0")
    assert t[(t["status"] == "run") & (t["method"] == "sft") & (t["domain"] == "ood")].iloc[0]["runs"] == 1
    md = table1_markdown(t, "-")
    assert "40.0 [" in md and "n=60 (runs 10, 80, 30)" in md and "3 PPO runs from the one SFT policy" in md
    one = table1_markdown(table1({m: e.query("run == 0") for m, e in eps.items()}, PAPER, "mlp", samples=100), "-")
    assert "(runs" not in one and "one PPO run a policy" in one


def test_markdown_and_latex_say_what_was_not_run_and_why():
    eps = {m: episodes(m, dict.fromkeys(CELLS, 0.5)) for m in ("sft", "rl_maniskill", "rl_world_model")}
    t = table1(eps, PAPER, "mlp", samples=500)
    md = table1_markdown(t, "no VLA here")
    assert "Rows not run: no VLA here." in md
    assert "| MLP RL w. ManiSkill | 50.0 [" in md and "paper 98.5 (-48.5)" in md
    assert "| OpenVLA Supervised Finetune | not run (paper 94.4)" in md
    assert "Against SFT" in md and "p=" in md
    tex = table1_latex(t)
    assert tex.startswith(r"\begin{tabular}") and r"\bottomrule" in tex and tex.count(r"\\") == 1 + 6


def multitask_episodes(method: str, rates: dict[tuple[str, str], float], n: int = 20) -> pd.DataFrame:
    """``n`` episodes per (task, object) scene of the multi-task policy, the first ``rate * n`` solved."""
    rows = [
        {
            "task": task,
            "object": obj,
            "scene_id": f"{task}/{obj.replace(' ', '_')}-plate-marble",
            "success_once": i < round(rate * n),
            "success_at_end": False,
            "run": 0,
        }
        for (task, obj), rate in rates.items()
        for i in range(n)
    ]
    return pd.DataFrame(rows)


SCENES2 = [
    ("move_to_aim", "peach"),
    ("pick_place", "peach"),
    ("move_to_aim", "green bell pepper"),
    ("pick_place", "green bell pepper"),
]


def test_table2_gives_each_scene_per_method_and_the_change_against_sft_as_the_papers_arrows():
    eps = {
        "sft": multitask_episodes("sft", dict.fromkeys(SCENES2, 0.25)),
        "rl_maniskill": multitask_episodes(
            "rl_maniskill", {**dict.fromkeys(SCENES2, 0.5), ("move_to_aim", "peach"): 0.1}
        ),
        "rl_world_model": multitask_episodes("rl_world_model", dict.fromkeys(SCENES2, 0.25)),
    }
    t = table2(eps, PAPER2, "mlp", samples=2000)
    assert len(t) == 3 * 4 and list(t["method"].unique()) == ["sft", "rl_maniskill", "rl_world_model"]
    # Pick and Place before Move to Aim, as the paper orders them
    assert list(zip(t["task"], t["object"], strict=True))[:4] == sorted(
        SCENES2, key=lambda c: (c[0] != "pick_place", c[1])
    )
    cell = t.set_index(["method", "task", "object"]).loc[("rl_maniskill", "pick_place", "green bell pepper")]
    assert (cell["episodes"], cell["successes"], cell["success_pct"]) == (20, 10, 50.0)
    assert cell["paper_success_pct"] == 95.0 and cell["difference_from_paper_pct"] == pytest.approx(-45.0)
    assert cell["vs_sft_pct"] == pytest.approx(25.0) and cell["vs_sft_relative"] == pytest.approx(1.0)
    assert cell["paper_vs_sft_relative"] == pytest.approx((95.0 - 74.4) / 74.4)
    worse = t.set_index(["method", "task", "object"]).loc[("rl_maniskill", "move_to_aim", "peach")]
    assert (
        worse["vs_sft_relative"] == pytest.approx((10 - 25) / 25)
        and worse["vs_sft_ci95_high_pct"] > worse["vs_sft_pct"]
    )
    assert t[t["method"] == "sft"]["vs_sft_pct"].isna().all()
    pd.testing.assert_frame_equal(t, table2(eps, PAPER2, "mlp", samples=2000))
    md = table2_markdown(t, "two objects on the plate")
    assert "| | Pick and Place: green bell pepper | Pick and Place: peach | Move to Aim: green bell pepper |" in md
    assert "↑1.00; paper ↑.28" in md and "↓.60; paper ↓.21" in md
    assert "Scenes: two objects on the plate." in md
    tex = table2_latex(t)
    assert tex.startswith(r"\begin{tabular}") and tex.count(r"\\") == 1 + 3
