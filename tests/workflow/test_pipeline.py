"""The tiny DAG for real (ManiSkill, rendering, MPLib): outputs checked for content, and reruns."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor

import h5py
import imageio.v2 as imageio
import numpy as np
import pandas as pd
import pytest
import torch

from roboscape.data.clips import clip_starts
from roboscape.data.frames import to_model_range
from roboscape.eval.paired import paired_difference
from roboscape.models.tokenizer import Tokenizer
from roboscape.models.world_model import WorldModel
from roboscape.sim.catalogue import SceneSpec, TaskParams
from roboscape.sim.env import make_env
from roboscape.sim.policy_env import PolicyEnv
from roboscape.sim.trajectory_io import TrajectoryShard
from roboscape.utils.io import read_json

from snakemake_helpers import REPO, planned_jobs, tiny_config

pytestmark = pytest.mark.slow


TINY = tiny_config()
LEARNED_REWARD_TASKS = TINY["rl"]["world_model"]["learned_reward_tasks"]  # where the learned-reward baselines run
SCENES_PER_TASK = TINY["scenes"]["n_ind"] + TINY["scenes"]["n_ood"]
N_SCENES = len(TINY["scenes"]["tasks"]) * SCENES_PER_TASK  # each with one trajectory of every kind
SHARD_NAMES = [
    f"{task}/shard_{i:03d}"
    for task in TINY["scenes"]["tasks"]
    for i in range(math.ceil(SCENES_PER_TASK / TINY["trajectories"]["scenes_per_shard"]))
]
N = len(SHARD_NAMES)  # trajectory shards: a job each of trajectories, clips and tokenize


def shards(run):
    return sorted((run.out / "trajectories").glob("*/shard_*.h5"))


def test_every_output_and_log_exists(tiny_run):
    out = tiny_run.out
    n = len(SHARD_NAMES)
    assert [p.relative_to(out / "trajectories").with_suffix("").as_posix() for p in shards(tiny_run)] == sorted(
        SHARD_NAMES
    )
    for f in (
        "scenes/scenes.json",
        "trajectories/summary.json",
        "trajectories/replay_fidelity.json",
        "clips/index.csv",
    ):
        assert (out / f).stat().st_size > 0
    assert len(list((out / "benchmarks" / "trajectories").glob("*.tsv"))) == n
    assert len(list((out / "logs" / "trajectories").glob("*.log"))) == n
    for task in tiny_run.config["scenes"]["tasks"]:
        gif = imageio.mimread(out / "previews" / f"{task}.gif")
        assert len(gif) > 10 and gif[0].shape[1] == 2 * 64  # third view | wrist
        assert (out / "previews" / f"{task}.png").stat().st_size > 10_000


@pytest.mark.parametrize("shard", SHARD_NAMES)
def test_trajectories_have_varying_frames_and_valid_actions(tiny_run, shard):
    with TrajectoryShard(tiny_run.out / "trajectories" / f"{shard}.h5") as traj:
        by_scene = {}
        for e in traj.episodes:  # one trajectory of each kind per scene
            by_scene.setdefault(e["scene_id"], []).append(e["label"])
        assert sorted(map(sorted, by_scene.values())) == [["exploratory", "optimal", "suboptimal"]] * len(by_scene)
        episodes = {e.meta["label"]: e for e in traj}  # the shard's last scene's
    for ep in episodes.values():
        T = len(ep)
        assert T > 20 or ep.meta["label"] == "exploratory"  # its length is asserted below
        for frames in ep.rgb.values():
            assert frames.shape == (T + 1, 64, 64, 3) and frames.dtype == np.uint8
            diffs = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
            # exploration holds still, or pushes an arm that is at its limit, for whole segments
            moving = 0.5 if ep.meta["label"] != "exploratory" else 0.0
            assert (diffs > 0).mean() > moving, "frames barely change"
            assert frames.std() > 10
        assert not np.array_equal(ep.rgb["third_view"], ep.rgb["wrist"])
        assert np.all(np.isfinite(ep.actions)) and np.all(np.abs(ep.actions) <= 1.0)
        assert np.all((ep.rewards >= 0) & (ep.rewards <= 1))
        assert ep.meta["instruction"] and ep.meta["scene_id"].startswith(ep.meta["task"])
        assert ep.meta["success"] == bool(ep.success[-1])
    optimal, suboptimal, exploratory = (episodes[k] for k in ("optimal", "suboptimal", "exploratory"))
    assert optimal.success[-1] and optimal.meta["suboptimal_method"] is None
    assert suboptimal.meta["suboptimal_method"] in ("detour", "interpolate", "perturb")
    for planned in (optimal, suboptimal):  # the planner commands the gripper fully open or closed
        assert set(np.unique(planned.actions[:, 6])) <= {-1.0, 1.0}
    generator = tiny_run.config["trajectories"]["generator"]
    explored = exploratory.actions[exploratory.meta["explore_from"] :]
    assert len(explored) == generator["explore_actions"] * generator["explore_hold"]


@pytest.mark.parametrize("shard", SHARD_NAMES[::2])
def test_success_flags_agree_with_evaluate(tiny_run, shard):
    """Reset with the recorded reset kwargs (as ManiSkill's replay tool does) and step the recorded
    actions: evaluate() must give the recorded flags, step by step."""
    with TrajectoryShard(tiny_run.out / "trajectories" / f"{shard}.h5") as traj:
        kw = traj.meta["env_info"]["env_kwargs"]
        ep = traj.read(0, views=())
    env = make_env(
        SceneSpec.from_dict(ep.meta["reset_kwargs"]["options"]["scene"]),
        image_size=32,
        obs_mode="state",
        task_params=TaskParams(**kw["task_params"]),
        control_freq=kw["control_freq"],
        sim_freq=kw["sim_freq"],
        max_episode_steps=10_000,
    )
    try:
        env.reset(**ep.meta["reset_kwargs"])
        flags = []
        for a in ep.actions:
            env.step(a)
            flags.append(bool(env.unwrapped.evaluate()["success"]))
    finally:
        env.close()
    assert flags == ep.success.tolist()


def test_summaries_count_by_cause(tiny_run):
    total = json.loads((tiny_run.out / "trajectories" / "summary.json").read_text())
    assert total["shards"] == len(shards(tiny_run))
    assert total["kept"] == {"optimal": N_SCENES, "suboptimal": N_SCENES, "exploratory": N_SCENES}
    assert isinstance(total["failed_attempts_by_cause"], dict)
    shard_summary = json.loads(next((tiny_run.out / "trajectories").glob("*/shard_*.summary.json")).read_text())
    assert {"requested", "kept", "failed_attempts_by_cause", "seconds_by_stage"} <= set(shard_summary)


def test_replay_fidelity_is_at_least_90_percent(tiny_run):
    fidelity = json.loads((tiny_run.out / "trajectories" / "replay_fidelity.json").read_text())
    assert fidelity["overall"]["episodes"] == N_SCENES  # every optimal trajectory: one per scene
    assert fidelity["overall"]["replay_success_rate"] >= 0.9


def test_clip_counts_add_up(tiny_run):
    L, stride = tiny_run.config["clips"]["clip_length"], tiny_run.config["clips"]["stride"]
    index = pd.read_csv(tiny_run.out / "clips" / "index.csv")
    expected = 0
    for path in shards(tiny_run):
        with TrajectoryShard(path) as shard:
            expected += sum(len(clip_starts(e["elapsed_steps"] + 1, L, stride)) for e in shard.episodes)
    assert len(index) == expected
    assert index["clip_id"].is_unique
    assert set(index["split"]) == {"ind", "ood"} and set(index["task"]) == set(tiny_run.config["scenes"]["tasks"])
    summary = json.loads((tiny_run.out / "clips" / "summary.json").read_text())
    assert summary["clips"] == expected == sum(summary["by_task"].values())


def test_tokenizer_trains_and_every_clip_is_tokenized(tiny_run):
    out = tiny_run.out
    ev = read_json(out / "tokenizer" / "eval.json")
    assert ev["train"]["steps"] == tiny_run.config["tokenizer"]["train"]["steps"]
    assert ev["held_out_ood"]["frames"] > 0 and 0 < ev["held_out_ood"]["codebook_utilisation"] <= 1
    stage_two = read_json(out / "tokenizer" / "finetuned" / "eval.json")
    assert stage_two["train"]["steps"] == tiny_run.config["tokenizer"]["decoder_train"]["steps"]
    # the same held-out frames; the tiny tier's stage two has a context decoder, and its evaluation
    # also scores copying the context frames
    assert tiny_run.config["tokenizer"]["decoder_context"] and "copy_context" in stage_two["held_out_ood"]["finetuned"]
    assert stage_two["held_out_ood"]["stage_one"] == pytest.approx(ev["held_out_ood"])
    assert (out / "tokenizer" / "finetuned" / "reconstructions.png").stat().st_size > 10_000
    metrics = pd.read_csv(out / "tokenizer" / "metrics.csv")
    assert metrics["step"].tolist() == list(range(1, ev["train"]["steps"] + 1))
    tokenizer = Tokenizer.from_pretrained(out / "tokenizer" / "model")
    clips = pd.read_csv(out / "clips" / "index.csv")
    tokens = pd.read_csv(out / "tokens" / "index.csv")
    assert len(tokens) == len(clips) and (tokens["clip_id"] == clips["clip_id"]).all()
    row = tokens.iloc[len(tokens) // 2]
    clip_row = clips.iloc[len(tokens) // 2]
    with h5py.File(out / "tokens" / row["shard"]) as ft, h5py.File(out / "clips" / clip_row["shard"]) as fc:
        t = ft["tokens"][int(row["row"])]
        hw = tokenizer.cfg.tokens_hw
        assert t.shape == (tiny_run.config["clips"]["clip_length"], hw, hw)
        assert t.min() >= 0 and t.max() < tokenizer.cfg.codebook_size
        frames = to_model_range(torch.from_numpy(fc["rgb/third_view"][int(row["row"])]))
        assert np.array_equal(tokenizer.encode(frames).numpy(), t)  # the shard holds what the model encodes
        assert np.array_equal(
            Tokenizer.from_pretrained(out / "tokenizer" / "finetuned" / "model").encode(frames).numpy(), t
        )
        assert np.array_equal(ft["done"][int(row["row"])], fc["done"][int(row["row"])])


@pytest.mark.parametrize("control", ["action", "text"])
def test_world_model_trains(tiny_run, control):
    out, wm_cfg = tiny_run.out, tiny_run.config["world_model"]
    summary = read_json(out / "world_model" / control / "train.json")
    assert summary["steps"] == wm_cfg[control]["train"]["steps"] and summary["tokens_per_second"] > 0
    metrics = pd.read_csv(out / "world_model" / control / "metrics.csv")
    assert metrics["step"].tolist() == list(range(1, summary["steps"] + 1))
    assert np.isfinite(metrics[["token_ce", "done_rmse", "token_accuracy"]].to_numpy()).all()
    model = WorldModel.from_pretrained(out / "world_model" / control / "model")
    assert model.cfg.control == control and model.cfg.window == wm_cfg["arch"]["window"]


@pytest.mark.parametrize("subset", ["heldout", "ood"])
@pytest.mark.parametrize("control", ["action", "text"])
def test_world_model_evaluation(tiny_run, control, subset):
    ev = read_json(tiny_run.out / "world_model" / control / "eval" / "eval.json")
    tf, ol = ev[subset]["teacher_forced"], ev[subset]["open_loop"]
    assert tf["windows"] > 0 and tf["token_cross_entropy"] > 0 and 0 <= tf["token_accuracy"] <= 1
    assert 0 <= tf["done"]["f1"] <= 1 and tf["done"]["n"] > 0
    assert ol["samples_per_clip"] == 1 and ol["horizon"] == tiny_run.config["world_model"]["eval"]["horizon"]
    for name in ("model", "copy_last_frame", "copy_last_frame_tokenized", "tokenizer_reconstruction"):
        assert len(ol["per_step"][name]["psnr"]) == ol["horizon"]
    margin = ol["margin_over_floor"]["copy_last_frame"]
    assert margin["psnr"] == pytest.approx(ol["mean"]["model"]["psnr"] - ol["mean"]["copy_last_frame"]["psnr"])
    assert margin["perceptual"] == pytest.approx(
        ol["mean"]["copy_last_frame"]["perceptual"] - ol["mean"]["model"]["perceptual"]
    )
    assert 1 <= ol["episodes"] <= ol["clips"]
    # each clip's own scores, kept for paired comparisons; their mean is the model's mean
    per_clip = ol["per_clip"]
    assert len(per_clip["clip"]) == len(per_clip["scene_id"]) == ol["clips"]
    assert len({(s, e) for s, e in zip(per_clip["scene_id"], per_clip["episode_seed"], strict=True)}) == ol["episodes"]
    assert sum(per_clip["model"]["psnr"]) / ol["clips"] == pytest.approx(ol["mean"]["model"]["psnr"])
    assert paired_difference(ol, ol, "psnr")["difference"] == 0
    gif = imageio.mimread(tiny_run.out / "world_model" / control / "eval" / f"{subset}_rollouts.gif")
    assert len(gif) == ol["horizon"]


@pytest.mark.parametrize("metric", ["psnr", "ssim", "perceptual"])
@pytest.mark.parametrize("control", ["action", "text"])
def test_world_model_margins_carry_their_uncertainty(tiny_run, control, metric):
    ol = read_json(tiny_run.out / "world_model" / control / "eval" / "eval.json")["heldout"]["open_loop"]
    margin = ol["margin_over_floor"]["copy_last_frame"][metric]
    se = ol["margin_standard_error"]["copy_last_frame"][metric]
    assert (se is None) == (ol["episodes"] < 2) and (se is None or se >= 0)
    naive = ol["margin_standard_error_over_clips"]["copy_last_frame"][metric]
    assert (naive is None) == (ol["clips"] < 2)
    better = ol["fraction_of_clips_better"]["copy_last_frame"][metric]
    assert 0 <= better <= 1
    # a positive mean margin needs a clip the model wins; a negative one, a clip it loses
    assert (margin <= 0 or better > 0) and (margin >= 0 or better < 1)


def test_action_world_model_controllability(tiny_run):
    eval_dir = tiny_run.out / "world_model" / "action" / "eval"
    ctrl = read_json(eval_dir / "eval.json")["controllability"]
    assert ctrl["clipped_action_steps_in_ood_sequence"] == ctrl["start_frames"] * ctrl["horizon"]
    assert len(imageio.mimread(eval_dir / "controllability.gif")) == ctrl["horizon"]
    assert (eval_dir / "controllability.png").stat().st_size > 10_000


def test_the_world_model_is_measured_against_the_simulator(tiny_run):
    """Figure 9 against ManiSkill: both start from the same frame, every sequence is scored in and
    out of domain, and the figures hold simulator | world model pairs."""
    out = tiny_run.out / "world_model" / "action" / "controllability"
    result = read_json(out / "controllability.json")
    cfg = tiny_run.config["world_model"]["controllability"]
    assert result["sequences"][-1] == "recorded suboptimal actions" and len(result["sequences"]) == 12
    for subset in ("heldout", "ood"):
        block = result["subsets"][subset]
        assert block["first_frame_max_abs_difference"] == 0  # the simulator resets to the recorded first frame
        assert len(block["start_states"]) == cfg["start_states"]
        for name in result["sequences"]:
            seq = block["sequences"][name]
            assert 1 <= seq["steps"] <= cfg["horizon"]
            assert len(seq["per_step"]["model"]["perceptual"]) == seq["steps"]
            for floor in ("copy_first_frame", "copy_first_frame_tokenized"):
                assert seq["beats_floor"][floor]["perceptual"] == (seq["margin_over_floor"][floor]["perceptual"] > 0)
                assert len(seq["margin_per_start_state"][floor]["perceptual"]) == cfg["start_states"]
                verdict = seq["versus_floor_95"][floor]["perceptual"]
                assert name in block["perceptual_versus_floor_95"][floor][verdict]
            motion = seq["tokens"]["per_step"]
            assert len(motion["hidden_motion"]) == seq["steps"]
            assert all(0 <= v <= 1 for k in ("model_changed", "simulator_changed", "hidden_motion") for v in motion[k])
        assert set(block["opposite_extremes"]["simulator"]) == set("xyz")
        still = block["sequences"]["no motion"]["mean"]  # the tokenized copy pays the decoder's cost
        assert still["copy_first_frame_tokenized"]["psnr"] < still["copy_first_frame"]["psnr"]
        gif = imageio.mimread(out / f"{subset}.gif")
        assert len(gif) == cfg["horizon"] + 1 and gif[0].shape[1] == 3 * 2 * 64  # 3 pairs to a row
        assert (out / f"{subset}.png").stat().st_size > 10_000
    assert (out / "margins.png").stat().st_size > 10_000
    page = (tiny_run.out / "summary.md").read_text()
    assert "## Controllability against the simulator" in page and "| first step | heldout: tokens moved" in page


@pytest.mark.parametrize("method", ["sft", "rl_world_model"])
def test_a_policys_episodes_in_the_world_model_are_replayed_in_the_simulator(tiny_run, method):
    """Rule policy_drift: the policy acts in the world model for an episode, the simulator replays
    its actions from the same first frame; frames are scored per step and the done signal counted
    against the simulator's success."""
    out = tiny_run.out / "world_model" / "action" / "drift" / method
    result = read_json(out / "pick_place.json")
    steps = tiny_run.config["policy"]["episode_steps"]
    assert result["config"]["horizon"] == steps and (result["method"], result["task"]) == (method, "pick_place")
    for subset in ("heldout", "ood"):
        block = result["subsets"][subset]
        assert block["first_frame_max_abs_difference"] == 0
        assert len(block["start_states"]) == tiny_run.config["evaluation"]["drift"]["start_states"]
        assert all(s["scene_id"].startswith("pick_place/") for s in block["start_states"])
        assert len(block["frames"]["per_step"]["model"]["perceptual"]) == steps
        done = block["done_against_success"]
        assert done["both"] + done["world_model_only"] + done["simulator_only"] + done["neither"] == done["episodes"]
        assert len(done["per_step"]["simulator_success"]) == steps
        gif = imageio.mimread(out / f"pick_place_{subset}.gif")
        assert len(gif) == steps + 1 and gif[0].shape[1] == 3 * 2 * 64
        assert (out / f"pick_place_{subset}.png").stat().st_size > 5_000
    assert (out / "pick_place.png").stat().st_size > 10_000
    d = result["subsets"]["ood"]["done_against_success"]
    solved = f"{d['world_model_success_once']} / {d['simulator_success_once']} / {d['both']} ({d['episodes']})"
    page = (tiny_run.out / "summary.md").read_text().splitlines()
    assert any("| Pick and Place | ood | " in row and row.endswith(f"| {solved} |") for row in page)


def test_table1_is_built_from_every_methods_episodes(tiny_run):
    tables = tiny_run.out / "tables"
    table = pd.read_csv(tables / "table1.csv")
    run = table[table["status"] == "run"]
    episodes = pd.read_csv(tiny_run.out / "policy" / "eval" / "rl_maniskill" / "episodes.csv")
    cell = run[(run["method"] == "rl_maniskill") & (run["task"] == "push") & (run["domain"] == "ood")].iloc[0]
    solved = episodes[(episodes["task"] == "push") & (episodes["domain"] == "ood")]["success_once"]
    assert cell["episodes"] == len(solved) and cell["successes"] == solved.sum()
    assert cell["paper_success_pct"] == 15.6 and not np.isnan(cell["vs_sft_p"])
    # methods x their tasks x domains
    assert len(run) == (3 * len(TINY["scenes"]["tasks"]) + 2 * len(LEARNED_REWARD_TASKS)) * 2
    assert set(table.loc[table["status"] == "not run", "policy"]) == {"openvla"}
    assert "| OpenVLA RL w. World Model | not run" in (tables / "table1.md").read_text()
    assert (tables / "table1.tex").read_text().startswith(r"\begin{tabular}")


def test_table2_is_built_from_the_multitask_policys_episodes(tiny_run):
    out, cfg = tiny_run.out, tiny_run.config
    catalogue = read_json(out / "scenes" / "scenes.json")
    scenes = catalogue["multitask"]
    assert len(scenes) == 4 and {s.split("/")[0] for s in scenes} == {"pick_place", "move_to_aim"}
    for s in scenes:  # Table 2's scenes got data in the tiny tier too
        assert s in catalogue["selected"][s.split("/")[0]]
    policy = out / "policy"
    assert read_json(policy / "sft" / "multitask" / "train.json")["episodes"] == 4  # one optimal trajectory per scene
    assert read_json(policy / "rl_maniskill" / "multitask" / "run0" / "train.json")["scenes"] == scenes
    rlwm = read_json(policy / "rl_world_model" / "multitask" / "run0" / "train.json")
    assert {s.split("/")[0] for s in rlwm["scenes"]} == {"pick_place", "move_to_aim"} and set(scenes) <= set(
        rlwm["scenes"]
    )
    table = pd.read_csv(out / "tables" / "table2.csv")
    assert list(dict.fromkeys(table["method"])) == ["sft", "rl_maniskill", "rl_world_model"] and len(table) == 3 * 4
    assert (table["episodes"] == cfg["evaluation"]["episodes"]["multitask"]).all()
    for method in ("sft", "rl_maniskill", "rl_world_model"):
        episodes = pd.read_csv(policy / "eval" / method / "multitask" / "run0" / "shard_000.csv")
        assert sorted(episodes["scene_id"]) == sorted(scenes) and set(episodes["domain"]) == {"ind"}
        row = table[(table["method"] == method) & (table["task"] == "pick_place") & (table["object"] == "peach")].iloc[
            0
        ]
        assert (
            row["successes"] == episodes[episodes["scene_id"] == "pick_place/peach-plate-marble"]["success_once"].sum()
        )
    assert table.loc[table["method"] != "sft", "vs_sft_p"].notna().all()
    md = (out / "tables" / "table2.md").read_text()
    assert "| MLP Supervised Finetune |" in md and "paper 74.4" in md
    assert (out / "tables" / "table2.tex").read_text().startswith(r"\begin{tabular}")


def test_learning_curves_evaluate_every_snapshot_on_the_tables_first_episodes(tiny_run):
    out, cfg = tiny_run.out, tiny_run.config
    curves = cfg["evaluation"]["curves"]
    points = pd.read_csv(out / "figures" / "learning_curves.csv")
    snapshots = cfg["rl"]["world_model"]["ppo"]["snapshots"]
    assert set(points["method"]) == {
        "rl_maniskill",
        "rl_world_model",
        "rl_world_model_embedding",
        "rl_world_model_proxy",
    }
    assert len(points) == 4 * len(curves["tasks"]) * 2 * (snapshots + 1)  # methods x tasks x domains x snapshots
    assert (points["episodes"] == curves["episodes"]).all()
    for method in set(points["method"]):
        for task in curves["tasks"]:
            rl = read_json(out / "policy" / method / task / "run0" / "train.json")  # the figure's run
            line = points[(points["method"] == method) & (points["task"] == task) & (points["domain"] == "ind")]
            assert line["env_steps"].tolist()[0] == 0 and line["env_steps"].tolist()[-1] == rl["env_steps"]
            rows = pd.read_csv(out / "policy" / "curves" / method / task / "run0.csv")
            table = pd.read_csv(out / "policy" / "eval" / method / "episodes.csv").query("run == 0")
            for domain in ("ind", "ood"):
                cell = table[(table["task"] == task) & (table["domain"] == domain)].sort_values("episode")
                first = cell["seed"].tolist()[: curves["episodes"]]
                final = rows[(rows["domain"] == domain) & (rows["update"] == rows["update"].max())]
                assert final["seed"].tolist() == first  # the same initial states as the table's cell
                # the final snapshot is the evaluated policy: the same episodes give the same outcomes
                assert final["success_once"].tolist() == cell["success_once"].tolist()[: curves["episodes"]]
    assert (out / "figures" / "learning_curves.png").stat().st_size > 10_000
    assert (out / "figures" / "learning_curves.pdf").read_bytes().startswith(b"%PDF")


def test_rollout_figures_show_every_task_and_method(tiny_run):
    out, cfg = tiny_run.out, tiny_run.config
    for domain in ("ind", "ood"):
        assert (out / "figures" / f"rollouts_{domain}.png").stat().st_size > 50_000
        assert (out / "figures" / f"rollouts_{domain}.pdf").read_bytes().startswith(b"%PDF")
        gif = imageio.mimread(out / "figures" / f"rollouts_{domain}.gif")
        size = cfg["trajectories"]["generator"]["image_size"]
        assert len(gif) == cfg["policy"]["episode_steps"] + 1
        assert gif[0].shape[:2] == (len(TINY["scenes"]["tasks"]) * size, 5 * size)  # tasks x methods
        frames = np.load(out / "policy" / "eval" / "sft" / "push" / "run0" / "shard_000.npz")[f"{domain}_episode_0"]
        assert frames.shape == (cfg["policy"]["episode_steps"] + 1, size, size, 3)


def test_the_readmes_results_are_made_from_the_tables(tiny_run, tmp_path):
    readme = tmp_path / "README.md"
    shutil.copy(REPO / "README.md", readme)
    subprocess.run(
        [sys.executable, "-m", "roboscape.report.readme", str(tiny_run.out), "--readme", str(readme)],
        cwd=tiny_run.workdir,
        check=True,
    )
    block = readme.read_text().split("<!-- results: begin")[1].split("<!-- results: end -->")[0]
    assert "--configfile config/tiny.yaml" in block and "**Table 1**" in block and "**Table 2**" in block
    for method in ("Supervised Finetune", "RL w. ManiSkill", "RL w. World Model", "RL w. World Model (proxy reward)"):
        assert f"| MLP {method} |" in block
    assert "| MLP, Pick and Place, OOD |" in block and "h of wall-clock time" in block


def test_summary_is_built_from_the_eval_files(tiny_run):
    page = (tiny_run.out / "summary.md").read_text()
    ev = read_json(tiny_run.out / "world_model" / "action" / "eval" / "eval.json")
    margin = ev["heldout"]["open_loop"]["margin_over_floor"]["copy_last_frame"]["psnr"]
    assert f"| action | in-domain, unseen episodes | {ev['heldout']['open_loop']['episodes']} / " in page
    assert f"{margin:+.2f}" in page
    tokenizer = read_json(tiny_run.out / "tokenizer" / "eval.json")["held_out_ood"]
    assert f"| stage one | {tokenizer['psnr']:.2f} |" in page


def test_the_policy_action_space_solves_the_tasks(tiny_run):
    replay = read_json(tiny_run.out / "trajectories" / "replay_fidelity_policy_rate.json")
    assert replay["frame_skip"] == tiny_run.config["world_model"]["arch"]["frame_skip"]
    assert replay["overall"]["episodes"] == N_SCENES and replay["overall"]["replay_success_rate"] >= 0.9
    assert set(replay["by_task"]) == set(tiny_run.config["scenes"]["tasks"])


@pytest.mark.parametrize("task", TINY["scenes"]["tasks"])
def test_policies_train_and_are_evaluated_in_and_out_of_domain(tiny_run, task):
    out, cfg = tiny_run.out / "policy", tiny_run.config
    sft = read_json(out / "sft" / task / "train.json")
    assert (
        sft["steps"] == cfg["policy"]["sft"]["train"]["steps"] and sft["episodes"] == 1
    )  # one optimal trajectory per scene
    rl = read_json(out / "rl_maniskill" / task / "run0" / "train.json")
    assert rl["env_steps"] >= cfg["rl"]["maniskill"]["ppo"]["total_steps"] and rl["init"].endswith(f"sft/{task}/model")
    metrics = pd.read_csv(out / "rl_maniskill" / task / "run0" / "metrics.csv")
    assert len(metrics) == rl["updates"] and np.isfinite(metrics["value_loss"]).all()
    rlwm = read_json(out / "rl_world_model" / task / "run0" / "train.json")
    assert rlwm["env_steps"] >= cfg["rl"]["world_model"]["ppo"]["total_steps"] and rlwm["initial_states"] > 0
    selected = read_json(tiny_run.out / "scenes" / "scenes.json")["selected"][task]
    assert rlwm["scenes"] == sorted(selected[: cfg["scenes"]["n_ind"]])  # every in-domain scene with data
    for reward in ("embedding", "proxy") if task in LEARNED_REWARD_TASKS else ():
        learned = read_json(out / f"rl_world_model_{reward}" / task / "run0" / "train.json")
        assert learned["config"]["reward"]["kind"] == reward and learned["reward_model"].endswith(
            f"{reward}/{task}/model"
        )
    baselines = ["rl_world_model_embedding", "rl_world_model_proxy"] if task in LEARNED_REWARD_TASKS else []
    for method in ("sft", "rl_maniskill", "rl_world_model", *baselines):
        summary = read_json(out / "eval" / method / "summary.json")
        for domain in ("ind", "ood"):
            cell = summary["cells"][f"{task}/{domain}"]
            assert cell["episodes"] == cfg["evaluation"]["episodes"][domain]
            assert 0 <= cell["success_at_end"]["ci95"][0] <= cell["success_at_end"]["ci95"][1] <= 1
            assert all(seed >= 2**31 for seed in cell["seeds"])
        gif = imageio.mimread(
            out / "eval" / method / task / "run0" / "shard_000.gif"
        )  # a row per domain's first episode
        assert len(gif) == cfg["policy"]["episode_steps"] + 1 and gif[0].shape[0] == 2 * gif[0].shape[1]
        episodes = pd.read_csv(out / "eval" / method / "episodes.csv")
        assert (episodes[(episodes["task"] == task) & (episodes["domain"] == "ood")]["ood_reason"] != "").all()
        assert set(episodes[(episodes["task"] == task) & (episodes["domain"] == "ind")]["scene_id"]) == {
            read_json(tiny_run.out / "scenes" / "scenes.json")["selected"][task][0]
        }


@pytest.mark.parametrize("kind", ["embedding", "proxy"])
def test_learned_rewards_are_scored_on_unseen_episodes_and_scenes(tiny_run, kind):
    heldout = 0
    for task in LEARNED_REWARD_TASKS:
        metrics = read_json(tiny_run.out / "rl" / "rewards" / kind / task / "metrics.json")
        assert metrics["kind"] == kind and metrics["task"] == task
        for subset in ("train", "ood"):
            assert metrics[subset]["n"] > 0 and np.isfinite(metrics[subset]["mse"])
        # the held-out episodes are drawn over every task's, so a tiny task may have none: it says so
        assert metrics["heldout"]["n"] > 0 or "no clips" in metrics["heldout"]["note"]
        heldout += metrics["heldout"]["n"]
    assert heldout > 0
    assert "## Learned-reward baselines" in (tiny_run.out / "summary.md").read_text()


@pytest.mark.parametrize("task", TINY["scenes"]["tasks"])
def test_every_reward_is_scored_along_held_out_and_unseen_trajectories(tiny_run, task):
    validity = read_json(tiny_run.out / "rl" / "rewards" / "validity" / f"{task}.json")
    frames = pd.read_csv(tiny_run.out / "rl" / "rewards" / "validity" / f"{task}.csv")
    assert set(frames["subset"]) <= {"heldout", "ood"} and "ood" in validity
    for subset in ("heldout", "ood"):
        if subset not in validity:
            continue
        rewards = validity[subset]["rewards"]
        learned = ["embedding", "proxy"] if task in LEARNED_REWARD_TASKS else []  # the baselines' tasks only
        assert list(rewards) == ["rule", "general", "general_real_goal", *learned]
        assert rewards["rule"]["spearman_with_rule"] == pytest.approx(1.0)
        assert all(r["frames"] == (frames["subset"] == subset).sum() for r in rewards.values())
    assert (tiny_run.out / "rl" / "rewards" / "validity" / f"{task}.png").stat().st_size > 10_000


@pytest.mark.parametrize("task", TINY["scenes"]["tasks"])
def test_goals_are_imagined_for_every_recorded_initial_state(tiny_run, task):
    from roboscape.rl.goals import read_goals

    goals = read_goals(tiny_run.out / "rl" / "goals" / f"{task}.h5")
    n = 2 * (TINY["scenes"]["n_ind"] + TINY["scenes"]["n_ood"])  # two trajectories per scene
    assert goals["goal"].shape == goals["initial"].shape == (n, 64, 64, 3) and len(goals["scene_id"]) == n
    assert set(goals["split"]) == {"ind", "ood"}
    assert (goals["steps"] >= 1).all() and (goals["steps"] <= TINY["rl"]["world_model"]["goals"]["max_steps"]).all()
    fidelity = read_json(tiny_run.out / "rl" / "goals" / f"{task}.json")
    for split in ("ind", "ood"):
        f = fidelity[split]
        assert f["states"] == 2 * TINY["scenes"][f"n_{split}"] and 0 <= f["reached"] <= 1
        if f["solved_states"]:
            assert f["margin"] == pytest.approx(f["initial_to_final"] - f["goal_to_final"])
            assert f["margin_over_decoded_initial"] == pytest.approx(f["initial_decoded_to_final"] - f["goal_to_final"])
            assert f["perfect_goal_margin"] == pytest.approx(f["initial_to_final"] - f["success_decoded_to_final"])
    assert (tiny_run.out / "rl" / "goals" / f"{task}.png").stat().st_size > 10_000
    assert "| margin over the decoded initial | a perfect goal's margin |" in (tiny_run.out / "summary.md").read_text()


def test_the_policy_environment_sees_what_the_data_stage_recorded(tiny_run):
    """The same scene and seed give the policy the first frame the trajectory file holds."""
    with TrajectoryShard(tiny_run.out / "trajectories" / f"{SHARD_NAMES[0]}.h5") as traj:
        ep = traj.read(0, views=("third_view",))
    scene = SceneSpec.from_dict(ep.meta["reset_kwargs"]["options"]["scene"])
    env = PolicyEnv(
        [scene], {ep.meta["instruction"]: np.zeros(4, np.float32)}, frame_skip=1, episode_steps=1, image_size=64
    )
    try:
        obs, _ = env.reset(options={"scene": scene, "episode_seed": ep.meta["episode_seed"]})
    finally:
        env.close()
    assert np.array_equal(obs["rgb"], ep.rgb["third_view"][0])


def test_maniskills_replay_tool_replays_our_files_with_env_states(tiny_run, tmp_path):
    """ManiSkill's own tool recreates the recorded environment from the sidecar's env_kwargs (our
    tasks registered by an import) and replays a trajectory file by its env states."""

    for ext in ("h5", "json"):
        shutil.copy(tiny_run.out / "trajectories" / f"{SHARD_NAMES[0]}.{ext}", tmp_path / f"traj.{ext}")
    code = (
        "import roboscape.sim.tasks; from mani_skill.trajectory.replay_trajectory import main, parse_args; "
        "main(parse_args())"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "--traj-path", str(tmp_path / "traj.h5"), "--use-env-states", "--count", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_the_timings_cover_every_job(tiny_run):
    """Every job's benchmark is counted, under its rule; the run's wall-clock is at most its jobs' time."""
    benchmarks = list((tiny_run.out / "benchmarks").rglob("*.tsv"))
    stages = pd.read_csv(tiny_run.out / "timings" / "timings.csv")
    assert stages["jobs"].sum() == len(benchmarks)
    assert {
        "trajectories",
        "train_tokenizer",
        "train_wm_action",
        "sft",
        "rl_world_model",
        "eval_policy",
        "table1",
    } <= set(stages["rule"])
    assert stages.set_index("rule").loc["rl_world_model", "jobs"] == len(
        list((tiny_run.out / "policy").glob("rl_world_model*/*/run*/train.json"))
    )
    wall = read_json(tiny_run.out / "timings" / "totals.json")["wall_hours"]
    assert 0 < wall <= stages["job_hours"].sum() + 0.01
    assert (tiny_run.out / "timings" / "timeline.png").stat().st_size > 10_000


def test_nothing_changed_plans_nothing(tiny_run):
    assert planned_jobs(tiny_run.workdir, tiny_run.configfile) == {}


# whatever reruns, the timings read every job's benchmark again, last
FINAL = {"timings": 1, "all": 1}
EVAL_JOBS = {"eval_wm_action": 1, "eval_wm_text": 1, "summary": 1}
# Policies: 4 tasks; sft, rl_maniskill and rl_world_model (general reward) on every task, the learned-reward
# baselines (rl_world_model with the embedding and proxy rewards) on rl.world_model.learned_reward_tasks
# (pick_place), each policy's shard evaluated in both domains in one job; Figures 4 and 5 show every method's
# first episode. Table 2's multi-task policy: sft, rl_maniskill and rl_world_model (general reward), in domain.
FIGURES = {"figure_rollouts": 2}
EVAL_POLICY = {"eval_policy": 3 * 4 + 2 + 3, "policy_results": 5, "summary": 1, "table1": 1, "table2": 1, **FIGURES}
EVAL_ONE_METHOD = {"eval_policy": 4, "policy_results": 1, "summary": 1, "table1": 1, **FIGURES}
IN_TABLE2 = {"eval_policy": 4 + 1, "table2": 1}  # a method of Table 2: its multi-task policy too
# Figure 2: each RL run of the tiny tier's curve task (pick_place) evaluated snapshot by snapshot
CURVES = {"eval_curve": 4, "figure_learning_curves": 1}
CURVE_ONE_METHOD = {"eval_curve": 1, "figure_learning_curves": 1}
RL_JOBS = {"rl_maniskill": 4 + 1, **EVAL_ONE_METHOD, **IN_TABLE2, **CURVE_ONE_METHOD}
# rule policy_drift: the tiny tier's drift task (pick_place) under evaluation.drift.methods (sft, rl_world_model)
DRIFT = {"policy_drift": 2, "summary": 1}
DRIFT_RLWM = {"policy_drift": 1, "summary": 1}
RLWM_GENERAL_JOBS = {"rl_world_model": 4 + 1, **EVAL_ONE_METHOD, **IN_TABLE2, **CURVE_ONE_METHOD, **DRIFT_RLWM}
RLWM_JOBS = {
    "rl_world_model": 4 + 2 + 1,
    "eval_policy": 4 + 2 + 1,
    "policy_results": 3,
    "summary": 1,
    "table1": 1,
    "table2": 1,
    **FIGURES,
    "eval_curve": 3,
    "figure_learning_curves": 1,
    **DRIFT_RLWM,
}  # all three rewards
# the text WM imagines the goals; resets draw from their file, and the general reward's validity is scored with them
GOAL_JOBS = {"imagine_goals": 4, **RLWM_JOBS, "reward_validity": 4}
CONTROL_JOBS = {"controllability": 1, "summary": 1}  # the action WM against the simulator
# the rollouts decode with stage two
DECODER_JOBS = {"finetune_decoder": 1, **EVAL_JOBS, **GOAL_JOBS, **CONTROL_JOBS, **DRIFT}
TEXT_WM_JOBS = {"train_wm_text": 1, "eval_wm_text": 1, **GOAL_JOBS}
# the embedding reward reads the action WM's hidden states
WM_JOBS = {
    "train_wm_action": 1,
    "train_wm_text": 1,
    **EVAL_JOBS,
    **GOAL_JOBS,
    "train_reward": 1,
    **CONTROL_JOBS,
    **DRIFT,
}
TOKENIZER_JOBS = {"train_tokenizer": 1, "tokenize": N, "token_index": 1, **DECODER_JOBS, **WM_JOBS}
CLIP_JOBS = {"clips": N, "clip_index": 1, "encode_instructions": 1, **TOKENIZER_JOBS, "train_reward": 2}
SFT_JOBS = {"sft": 4 + 1, "rl_maniskill": 4 + 1, "rl_world_model": 4 + 2 + 1, **EVAL_POLICY, **CURVES, **DRIFT}
TRAJECTORY_JOBS = {
    "trajectories": N,
    "trajectory_summary": 1,
    "replay": 1,
    "replay_policy_rate": 1,
    "previews": 4,
    **CLIP_JOBS,
    **SFT_JOBS,
}
# every tier's summary page reads the data stage's totals
SUMMARY = {"summary": 1}


# (name, edit of the tiny config, the jobs a dry run then plans)
CONFIG_EDITS = [
    ("clips", lambda c: c["clips"].update(stride=4), {**CLIP_JOBS, **FINAL}),
    (
        "trajectories",
        lambda c: c["trajectories"]["generator"].update(n_suboptimal=2),
        {**TRAJECTORY_JOBS, **FINAL},
    ),
    (
        "replay",
        lambda c: c["replay"].update(max_episodes_per_shard=1),
        {"replay": 1, "replay_policy_rate": 1, **SUMMARY, **FINAL},
    ),
    (
        "scenes",
        lambda c: c["scenes"]["task_params"].update(push_distance=0.12),
        {"scenes": 1, "policy_instructions": 1, **TRAJECTORY_JOBS, **FINAL},
    ),
    ("tokenizer", lambda c: c["tokenizer"]["model"].update(codebook_bits=8), {**TOKENIZER_JOBS, **FINAL}),
    ("tokenizer.train", lambda c: c["tokenizer"]["train"].update(lr=1e-3), {**TOKENIZER_JOBS, **FINAL}),
    (
        "tokenizer.view",
        lambda c: c["tokenizer"]["run"].update(view="wrist"),
        {**TOKENIZER_JOBS, "train_reward": 2, **FINAL},  # the proxy reward reads the same view
    ),
    # Stage two leaves the tokens alone: the world models keep their training.
    (
        "tokenizer.decoder_train",
        lambda c: c["tokenizer"]["decoder_train"].update(lr=1e-3),
        {**DECODER_JOBS, **FINAL},
    ),
    (
        "tokenizer.decoder_context",
        lambda c: c["tokenizer"].update(decoder_context=False),
        {**DECODER_JOBS, **FINAL},
    ),
    (
        "tokenizer.decoder_channels",
        lambda c: c["tokenizer"].update(decoder_channels=8),
        {**DECODER_JOBS, **FINAL},
    ),
    ("world_model", lambda c: c["world_model"]["arch"].update(dim=48), {**WM_JOBS, **FINAL}),
    # the tiny tier's text WM warm-starts from the action WM: a new action WM retrains it too
    ("world_model.action", lambda c: c["world_model"]["action"]["train"].update(steps=5), {**WM_JOBS, **FINAL}),
    (
        "world_model.guidance",
        lambda c: c["world_model"]["guidance"].update(action_dropout=0.2, scale=2.0),
        {**WM_JOBS, **FINAL},
    ),
    # where guidance applies changes every rollout of the action WM (reward validity's still arm too), not the model
    (
        "world_model.guidance.positions",
        lambda c: c["world_model"]["guidance"].update(positions="hidden"),
        {"eval_wm_action": 1, **CONTROL_JOBS, **RLWM_JOBS, **DRIFT, "reward_validity": 4, **FINAL},
    ),
    (
        "world_model.rollout_precision",
        lambda c: c["world_model"].update(rollout_precision="bf16"),
        {"eval_wm_action": 1, **CONTROL_JOBS, **RLWM_JOBS, **DRIFT, "reward_validity": 4, **FINAL},
    ),
    (
        "world_model.text.init_from",
        lambda c: c["world_model"]["text"].update(init_from=None),
        {**TEXT_WM_JOBS, **FINAL},
    ),
    ("world_model.text", lambda c: c["world_model"]["text"]["train"].update(lr=1e-3), {**TEXT_WM_JOBS, **FINAL}),
    (
        "world_model.text_encoder",
        lambda c: c["world_model"].update(text_encoder="t5"),
        {"encode_instructions": 1, **TEXT_WM_JOBS, "policy_instructions": 1, **SFT_JOBS, **CONTROL_JOBS, **FINAL},
    ),
    # the policies act at the world model's rate
    (
        "world_model.arch.frame_skip",
        lambda c: c["world_model"]["arch"].update(frame_skip=2),
        {**WM_JOBS, "replay_policy_rate": 1, **SFT_JOBS, **FINAL},
    ),
    ("policy.sft", lambda c: c["policy"]["sft"]["train"].update(lr=1e-3), {**SFT_JOBS, **FINAL}),
    ("policy.arch", lambda c: c["policy"]["arch"].update(hidden_dim=24), {**SFT_JOBS, **FINAL}),
    # a fresh policy's exploration noise is also the size of reward validity's jittering arm
    (
        "policy.arch.log_std_init",
        lambda c: c["policy"]["arch"].update(log_std_init=-1.0),
        {**SFT_JOBS, "reward_validity": 4, **FINAL},
    ),
    ("rl.maniskill.ppo", lambda c: c["rl"]["maniskill"]["ppo"].update(learning_rate=1e-3), {**RL_JOBS, **FINAL}),
    (
        "rl.runs",
        lambda c: c["rl"].update(runs=2),
        {"rl_maniskill": 4 + 1, "rl_world_model": 4 + 2 + 1, "eval_policy": 2 * (4 + 1) + 2, "policy_results": 4}
        | {"summary": 1, "table1": 1, "table2": 1, **CURVES, **FINAL},
    ),  # a second PPO run of every RL policy, its evaluation and its learning curve; the first run's jobs stay
    (
        "rl.world_model.reward",
        lambda c: c["rl"]["world_model"]["reward"].update(alpha=0.2),
        {**RLWM_GENERAL_JOBS, "reward_validity": 4, **FINAL},  # the learned rewards read none of it
    ),
    (
        "rl.reward_models",
        lambda c: c["rl"]["reward_models"]["train"].update(lr=1e-3),
        {"train_reward": 2, "rl_world_model": 2, "eval_policy": 2, "policy_results": 2, "reward_validity": 1}
        | {"summary": 1, "table1": 1, **FIGURES, "eval_curve": 2, "figure_learning_curves": 1, **FINAL},
    ),
    (
        "rl.world_model.learned_reward_tasks",
        lambda c: c["rl"]["world_model"].update(learned_reward_tasks=["pick_place", "pull"]),
        {"train_reward": 2, "rl_world_model": 2, "eval_policy": 2, "policy_results": 2, "reward_validity": 1}
        | {"summary": 1, "table1": 1, **FIGURES, **FINAL},
    ),  # the baselines on Pull too: Pull's reward models, policies and their evaluation; no learning curve
    (
        "rl.world_model.goals",
        lambda c: c["rl"]["world_model"]["goals"].update(max_steps=2),
        {**GOAL_JOBS, **FINAL},
    ),
    (
        "evaluation",
        lambda c: c["evaluation"]["episodes"].update(ood=3),
        {"eval_policy": 3 * 4 + 2, "policy_results": 5, "summary": 1, "table1": 1, "figure_rollouts": 2, **FINAL},
    ),  # every single-task policy's job (each runs both domains), and Figures 4 and 5 that read them
    ("evaluation.curves", lambda c: c["evaluation"]["curves"].update(episodes=2), {**CURVES, **FINAL}),
    (
        "evaluation.episodes.multitask",
        lambda c: c["evaluation"]["episodes"].update(multitask=2),
        {"eval_policy": 3, "table2": 1, **FINAL},
    ),  # Table 2's cells only
    (
        "scenes.multitask",
        lambda c: c["scenes"]["multitask"].update(objects=["peach", "apple"]),
        {"scenes": 1, "policy_instructions": 1, **TRAJECTORY_JOBS, **FINAL},
    ),
    (
        "rl.world_model.ppo.snapshots",
        lambda c: c["rl"]["world_model"]["ppo"].update(snapshots=3),
        {**RLWM_JOBS, **FINAL},
    ),
    ("world_model.eval", lambda c: c["world_model"]["eval"].update(horizon=3), {**EVAL_JOBS, **FINAL}),
    ("tables", lambda c: c["tables"].update(bootstrap_samples=500), {"table1": 1, "table2": 1, **FINAL}),
    (
        "world_model.controllability",
        lambda c: c["world_model"]["controllability"].update(horizon=2),
        {**CONTROL_JOBS, **FINAL},
    ),
    ("evaluation.drift", lambda c: c["evaluation"]["drift"].update(start_states=2), {**DRIFT, **FINAL}),
    ("seed", lambda c: c.update(seed=1), {**TRAJECTORY_JOBS, **FINAL}),
    # What a job is given (cpus, memory, time, GPUs) is not what it computes: no rerun.
    ("tokenizer.resources", lambda c: c["tokenizer"]["resources"].update(mem_mb=5000, runtime=30), {}),
    ("world_model.action.resources", lambda c: c["world_model"]["action"]["resources"].update(cpus=2), {}),
    ("trajectories.resources", lambda c: c["trajectories"]["resources"].update(runtime_per_trajectory_s=30), {}),
    ("rl.maniskill.resources", lambda c: c["rl"]["maniskill"]["resources"].update(mem_mb=5000), {}),
    # Nor is where RL w. ManiSkill steps its environments (the same weights either way: test_cluster.py).
    ("rl.maniskill.asynchronous", lambda c: c["rl"]["maniskill"].update(asynchronous=True), {}),
]


@pytest.fixture(scope="module")
def config_edit_plans(tiny_run) -> dict[str, Future]:
    """Every config edit's dry run, as many at a time as there are CPUs (a dry run is mostly one
    process's Snakemake start-up, and takes no lock), all finished before any test goes on: the
    library-edit tests edit the same working copy."""
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        return {
            name: pool.submit(planned_jobs, tiny_run.workdir, tiny_run.edited_config(f"edited_{name}.yaml", edit))
            for name, edit, _ in CONFIG_EDITS
        }


@pytest.mark.parametrize("name, expected", [(name, expected) for name, _, expected in CONFIG_EDITS])
def test_config_edit_plans_exactly_the_dependent_jobs(config_edit_plans, name, expected):
    assert config_edit_plans[name].result() == expected


@pytest.mark.parametrize(
    "module, expected",
    [
        ("roboscape/data/clips.py", {**CLIP_JOBS, **FINAL}),
        ("roboscape/train/tokenizer_training.py", {**TOKENIZER_JOBS, **FINAL}),
        ("roboscape/train/decoder_finetuning.py", {**DECODER_JOBS, **FINAL}),
        ("roboscape/data/tokens.py", {"tokenize": N, "token_index": 1, **WM_JOBS, **FINAL}),
        ("roboscape/sim/replay.py", {"replay": 1, "replay_policy_rate": 1, **SUMMARY, **FINAL}),
        ("roboscape/models/world_model.py", {**WM_JOBS, "train_reward": 2, **FINAL}),
        ("roboscape/eval/world_model_eval.py", {**EVAL_JOBS, **CONTROL_JOBS, **DRIFT, **FINAL}),  # its frame metrics
        (
            "roboscape/models/text_encoder.py",
            {"encode_instructions": 1, **WM_JOBS, "policy_instructions": 1, **SFT_JOBS, **FINAL},
        ),
        ("roboscape/report/previews.py", {"previews": 4, **FINAL}),
        ("roboscape/train/launch.py", {**TOKENIZER_JOBS, **SFT_JOBS, "train_reward": 2, **FINAL}),
        ("roboscape/report/world_model_figures.py", {**EVAL_JOBS, **CONTROL_JOBS, **DRIFT, **FINAL}),
        ("roboscape/eval/controllability.py", {**CONTROL_JOBS, **DRIFT, **FINAL}),
        ("roboscape/eval/policy_drift.py", {**DRIFT, **FINAL}),
        ("roboscape/data/heldout_episodes.py", {"reward_validity": 4, **CONTROL_JOBS, **DRIFT, **FINAL}),
        ("roboscape/report/summary.py", {**SUMMARY, **FINAL}),
        (
            "roboscape/report/tables.py",
            {"table1": 1, "table2": 1, **FIGURES, **FINAL},
        ),  # Figures 4 and 5 name the methods alike
        ("roboscape/report/policy_figures.py", {**FIGURES, **FINAL}),
        ("roboscape/eval/learning_curves.py", {**CURVES, **FINAL}),
        ("roboscape/report/learning_curves.py", {"figure_learning_curves": 1, **FINAL}),
        ("roboscape/utils/h5.py", {**TRAJECTORY_JOBS, **FINAL}),
        (
            "roboscape/rl/ppo.py",
            {**RL_JOBS, **RLWM_JOBS, "eval_policy": 4 + 1 + 4 + 2 + 1, "policy_results": 4, **CURVES, **FINAL},
        ),
        ("roboscape/models/reward_models.py", {"train_reward": 2, **RLWM_JOBS, "reward_validity": 4, **FINAL}),
        ("roboscape/rl/reward_validity.py", {"reward_validity": 4, "summary": 1, **FINAL}),
        ("roboscape/rl/world_model_env.py", {**RLWM_JOBS, "reward_validity": 4, **FINAL}),
        ("roboscape/rl/goals.py", {**GOAL_JOBS, **FINAL}),
        ("roboscape/eval/policy_eval.py", {**EVAL_POLICY, **CURVES, **FINAL}),
        ("roboscape/data/policy_steps.py", {**SFT_JOBS, **FINAL}),
        # the policy stages load either kind of policy, so OpenVLA's code is theirs too
        ("roboscape/policy/openvla/model.py", {**SFT_JOBS, **FINAL}),
    ],
)
def test_library_edit_reruns_the_stages_that_use_it(tiny_run, module, expected):
    """Editing the (workflow copy's) library reruns the stages that import that module, no more.
    Snakemake compares checksums too, so this must be a real content change, not a touch."""
    path = tiny_run.workdir / module
    original = path.read_text()
    try:
        path.write_text(original + "\n# an edit\n")
        assert planned_jobs(tiny_run.workdir, tiny_run.configfile) == expected
    finally:
        path.write_text(original)
