"""A tier's results as one Markdown page (rule ``summary``: ``results/<tier>/summary.md``), built from
the JSON files the stages write -- the README's results table is this page of the default tier,
never figures copied by hand."""

from __future__ import annotations

from pathlib import Path

from roboscape.sim.catalogue import TASK_TITLES
from roboscape.sim.trajectory_io import LABELS
from roboscape.utils.io import read_json


def _pm(value: float | None, se: float | None, digits: int) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" + ("" if se is None else f" ± {se:.{digits}f}")


def data_table(trajectories: dict, replay: dict, clips: dict) -> list[str]:
    kept = trajectories["kept"]
    return [
        f"| trajectories kept ({' / '.join(LABELS)}) | solved | failed attempts (retried) "
        "| kept with a sampled plan (may differ run to run) "
        "| optimal replayed to success | clips (in-domain / OOD) |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| {' / '.join(str(kept.get(k, 0)) for k in LABELS)} of {sum(trajectories['requested'].values())} "
        f"| {trajectories['kept_successful']} | {sum(trajectories['failed_attempts_by_cause'].values())} "
        f"| {trajectories['kept_with_sampled_plans']} "
        f"| {replay['overall']['replay_success_rate']:.0%} of {replay['overall']['episodes']} "
        f"| {clips['by_split'].get('ind', 0)} / {clips['by_split'].get('ood', 0)} |",
    ]


def tokenizer_table(stage_one: dict, stage_two: dict) -> list[str]:
    rows = {
        "stage one": stage_one["held_out_ood"],
        "stage two (the decoder rollouts use)": stage_two["held_out_ood"]["finetuned"],
    }
    if "copy_context" in stage_two["held_out_ood"]["finetuned"]:
        rows["copying the context frame"] = stage_two["held_out_ood"]["finetuned"]["copy_context"]
    lines = [
        "| held-out OOD frames | PSNR (dB) | SSIM | perceptual distance | codebook use |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, m in rows.items():
        use = f"{m['codebook_utilisation']:.1%}" if "codebook_utilisation" in m else ""
        lines.append(f"| {name} | {m['psnr']:.2f} | {m['ssim']:.3f} | {m['perceptual']:.3f} | {use} |")
    return lines


def world_model_table(evals: dict[str, dict]) -> list[str]:
    lines = [
        "| world model | held-out subset | episodes / clips | PSNR margin (dB) | SSIM margin | perceptual margin "
        "| token CE (nats) | done F1 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for control, ev in evals.items():
        for subset, title in (("heldout", "in-domain, unseen episodes"), ("ood", "out-of-domain scenes")):
            ol, tf = ev[subset]["open_loop"], ev[subset]["teacher_forced"]
            margin, se = ol["margin_over_floor"]["copy_last_frame"], ol["margin_standard_error"]["copy_last_frame"]
            lines.append(
                f"| {control} | {title} | {ol['episodes']} / {ol['clips']} | {_pm(margin['psnr'], se['psnr'], 2)} "
                f"| {_pm(margin['ssim'], se['ssim'], 3)} | {_pm(margin['perceptual'], se['perceptual'], 4)} "
                f"| {tf['token_cross_entropy']:.2f} | {tf['done']['f1']:.2f} |"
            )
    return lines


METHOD_TITLES = {
    "sft": "Supervised Finetune",
    "rl_maniskill": "RL w. ManiSkill",
    "rl_world_model": "RL w. World Model",
    "rl_world_model_embedding": "RL w. World Model, embedding reward (iVideoGPT)",
    "rl_world_model_proxy": "RL w. World Model, proxy reward (DiWA)",
}


def _cell(block: dict | None) -> str:
    if block is None:
        return "not run"
    end, once = block["success_at_end"], block["success_once"]
    low, high = end["ci95"]
    return f"{end['rate']:.0%} ({low:.0%}-{high:.0%}); once {once['rate']:.0%}; n={block['episodes']}"


def policy_table(replay: dict, policies: dict[str, dict]) -> list[str]:
    tasks = sorted({cell.split("/")[0] for s in policies.values() for cell in s["cells"]}, key=list(TASK_TITLES).index)
    overall = replay["overall"]
    by_task = ", ".join(f"{TASK_TITLES[t]} {v['replay_success_rate']:.0%}" for t, v in replay["by_task"].items())
    lines = [
        "The action space at the policy's rate (each optimal trajectory's actions grouped per policy step, split back",
        f"and replayed open loop): {overall['replay_success_rate']:.0%} of {overall['episodes']} replay to success "
        f"({by_task}).",
        "",
        "Success at the end of the episode, with its 95% Wilson interval; success at any step; episodes (an RL",
        "method's pooled over its PPO runs, `rl.runs`; each run's rate is in `tables/`).",
        "",
        "| method | domain | " + " | ".join(TASK_TITLES[t] for t in tasks) + " |",
        "| --- | --- | " + " | ".join("---" for _ in tasks) + " |",
    ]
    for method, summary in policies.items():
        for domain in ("ind", "ood"):
            cells = [_cell(summary["cells"].get(f"{t}/{domain}")) for t in tasks]
            lines.append(f"| {METHOD_TITLES.get(method, method)} | {domain.upper()} | " + " | ".join(cells) + " |")
    return lines


def goal_table(fidelity: dict[str, dict]) -> list[str]:
    lines = [
        "Perceptual distance to the planner's final frame from the imagined goal and from the initial frame (the",
        "floor), on initial states whose recorded episode ended solved; the margin is positive where the goal is",
        "closer (± one standard error clustered by scene). A goal is a decoded frame: the margin over the initial",
        "frame decoded leaves out what decoding costs, and a perfect goal (the frame of the episode's first success,",
        "decoded) has the last margin -- where it is negative, no goal this tokenizer decodes can beat the floor.",
        "",
        "| task | split (scenes) | states | goal to final | initial to final | margin | goal closer "
        "| margin over the decoded initial | a perfect goal's margin | goals reached (mean steps) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for task, f in fidelity.items():
        for split in ("ind", "ood"):
            if split not in f:
                continue
            g = f[split]
            if g["margin"] is None:
                lines.append(f"| {TASK_TITLES[task]} | {split.upper()} | 0 solved | | | | | | | |")
                continue
            margin, over_decoded, perfect = (
                _pm(g[k], g[f"{k}_standard_error"], 3)
                for k in ("margin", "margin_over_decoded_initial", "perfect_goal_margin")
            )
            lines.append(
                f"| {TASK_TITLES[task]} | {split.upper()} ({g['scenes']}) | {g['solved_states']} "
                f"| {g['goal_to_final']:.3f} | {g['initial_to_final']:.3f} | {margin} "
                f"| {g['fraction_goal_closer']:.0%} | {over_decoded} | {perfect} "
                f"| {g['reached']:.0%} ({g['mean_steps']:.1f}) |"
            )
    return lines


def reward_model_table(metrics: dict[str, dict]) -> list[str]:
    lines = [
        "Predicted against the simulator's rule-based reward, per frame: mean squared error, Pearson and Spearman",
        "correlation (n frames), on the training episodes, unseen in-domain episodes and out-of-domain scenes.",
        "",
        "| reward | task | "
        + " | ".join(f"{s} (MSE / Pearson / Spearman, n)" for s in ("train", "held out", "OOD"))
        + " |",
        "| --- | --- | --- | --- | --- |",
    ]
    for m in metrics.values():
        cells = [
            "none"
            if not m[subset]["n"]
            else f"{m[subset]['mse']:.4f} / {m[subset]['pearson']:.2f} / {m[subset]['spearman']:.2f}, {m[subset]['n']}"
            for subset in ("train", "heldout", "ood")
        ]
        lines.append(f"| {m['kind']} | {TASK_TITLES[m['task']]} | " + " | ".join(cells) + " |")
    return lines


def validity_table(validity: dict[str, dict]) -> list[str]:
    lines = [
        "Each reward along held-out in-domain and out-of-domain planner trajectories: its value order (Spearman",
        "correlation with the time step along successful optimal trajectories, mean ± standard error clustered by",
        "scene, n trajectories) and its Spearman correlation with the simulator's reward over every frame.",
        "general_real_goal is the general reward with the frame a solved episode really ends in as its goal",
        "(a perfect imagined goal): the gap between it and general is the imagined goals' share.",
        "",
        "| task | subset | reward | value order (n) | Spearman with the rule |",
        "| --- | --- | --- | --- | --- |",
    ]
    for task, v in validity.items():
        for subset in ("heldout", "ood"):
            for name, r in v.get(subset, {}).get("rewards", {}).items():
                order = (
                    "none"
                    if r["value_order"] is None
                    else f"{_pm(r['value_order'], r['value_order_standard_error'], 2)} ({r['trajectories']})"
                )
                lines.append(f"| {TASK_TITLES[task]} | {subset} | {name} | {order} | {r['spearman_with_rule']:.2f} |")
    return lines


def held_arm_table(validity: dict[str, dict]) -> list[str]:
    """Per task, subset and held-arm kind, the share of the action world model's episodes whose
    done signal passes the sparse term's threshold, and how many ManiSkill solves."""
    lines = [
        "The general reward's sparse term with the arm held where it is, the gripper open, for RL w. World Model's",
        "episode: still, or jittering about as much as a fresh policy's exploration noise. From the same start",
        "states in the action world model and in ManiSkill: where ManiSkill solves none, every episode whose done",
        "signal passes the threshold, held for the environment's done_steps in a row, is paid for nothing (95% Wilson",
        "interval).",
        "",
        "| task | subset | arm | done held (steps) | done passed (of start states) | share (95%) | first step, mean "
        "| ManiSkill solved |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for task, v in validity.items():
        held = v.get("held_arm", {})
        for kind, subsets in held.get("kinds", {}).items():
            for subset, r in subsets.items():
                low, high = r["share_95"]
                first = "never" if r["first_step_mean"] is None else f"{r['first_step_mean']:.1f}"
                lines.append(
                    f"| {TASK_TITLES[task]} | {subset} | {kind} | {held['done_steps']} "
                    f"| {r['done_passed']} of {r['start_states']} | {r['share']:.2f} [{low:.2f}, {high:.2f}] "
                    f"| {first} | {r['solved_in_simulator']} |"
                )
    return lines


def controllability_table(result: dict) -> list[str]:
    """Per action sequence, the action world model's perceptual margin over copying the first frame
    and over copying its tokenized reconstruction, against the simulator, in and out of domain; and
    how far apart opposite extremes end."""
    subsets = list(result["subsets"])
    columns = [(s, f) for s in subsets for f in result["floors"]]
    lines = [
        "| sequence | " + " | ".join(f"{s}: over {result['floors'][f]}" for s, f in columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for name in result["sequences"]:
        cells = []
        for subset, floor in columns:
            seq = result["subsets"][subset]["sequences"][name]
            cells.append(
                _pm(seq["margin_over_floor"][floor]["perceptual"], seq["margin_standard_error"][floor]["perceptual"], 3)
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| opposite extremes, world model / simulator | " + " | ".join(subsets) + " |")
    lines.append("| --- |" + " --- |" * len(subsets))
    for axis in "xyz":
        ratios = [result["subsets"][s]["opposite_extremes"]["ratio"][axis] for s in subsets]
        lines.append(f"| {axis} | " + " | ".join("n/a" if r is None else f"{r:.2f}" for r in ratios) + " |")
    lines += ["", *token_motion_table(result)]
    return lines


def token_motion_table(result: dict) -> list[str]:
    """At the first step of each sequence, where the world model and the simulator start from the
    same tokens: the share of token positions that change in each, the model's probability of
    keeping a token where the simulator changes it and everywhere, and the hidden motion (tokens a
    greedy rollout kept against less than even odds; roboscape.eval.controllability)."""
    subsets = list(result["subsets"])
    heads = ("tokens moved, world model / simulator", "P(keep) where the simulator moves / everywhere", "hidden motion")
    lines = [
        "| first step | " + " | ".join(f"{s}: {h}" for s in subsets for h in heads) + " |",
        "| --- |" + " --- |" * (len(subsets) * len(heads)),
    ]
    for name in result["sequences"]:
        cells = []
        for subset in subsets:
            t = result["subsets"][subset]["sequences"][name]["tokens"]["per_step"]
            keep = t["keep_probability_where_simulator_changes"][0]
            cells += [
                f"{t['model_changed'][0]:.3f} / {t['simulator_changed'][0]:.3f}",
                ("n/a" if keep is None else f"{keep:.2f}") + f" / {t['keep_probability'][0]:.2f}",
                f"{t['hidden_motion'][0]:.3f}",
            ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def drift_table(drift: dict[str, dict]) -> list[str]:
    """Per policy, task and subset, along the policy's own episodes in the action world model
    (roboscape.eval.policy_drift): the perceptual margin over copying the first frame over the whole
    episode and over each half, and the episodes the world model's done signal and the simulator
    count solved."""
    lines = [
        "| policy | task | subset | margin over copying the first frame | first half | second half "
        "| solved: world model / simulator / both (of n) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in drift.values():
        for subset, block in result["subsets"].items():
            floor = "copy_first_frame"
            margins = [block["frames"], block["halves"]["first"], block["halves"]["second"]]
            d = block["done_against_success"]
            cells = [
                _pm(m["margin_over_floor"][floor]["perceptual"], m["margin_standard_error"][floor]["perceptual"], 3)
                for m in margins
            ]
            method = METHOD_TITLES.get(result["method"], result["method"])
            solved = f"{d['world_model_success_once']} / {d['simulator_success_once']} / {d['both']} ({d['episodes']})"
            row = [method, TASK_TITLES[result["task"]], subset, *cells, solved]
            lines.append("| " + " | ".join(row) + " |")
    return lines


def summary_markdown(outdir: str, paths: dict[str, str | Path]) -> str:
    """The page; ``paths`` names the JSON files: trajectories, replay, clips, tokenizer,
    tokenizer_finetuned, wm_action, wm_text, controllability, replay_policy_rate, policy_<method> (each evaluated
    method's summary), goals_<task> (each task's goal fidelity), reward_<kind>_<task> (each learned
    reward's held-out metrics), validity_<task> (each task's reward validity) and drift_<method>_<task>
    (each measured policy's drift in the action world model)."""
    j = {name: read_json(path) for name, path in paths.items()}
    policies = {name.removeprefix("policy_"): v for name, v in j.items() if name.startswith("policy_")}
    goals = {name.removeprefix("goals_"): v for name, v in j.items() if name.startswith("goals_")}
    rewards = {name: v for name, v in j.items() if name.startswith("reward_")}
    validity = {name.removeprefix("validity_"): v for name, v in j.items() if name.startswith("validity_")}
    drift = {name: v for name, v in j.items() if name.startswith("drift_")}
    horizon = j["wm_action"]["heldout"]["open_loop"]["horizon"]
    return "\n".join(
        [
            f"# Results: `{outdir}`",
            "",
            "## Data",
            "",
            *data_table(j["trajectories"], j["replay"], j["clips"]),
            "",
            "## Tokenizer",
            "",
            *tokenizer_table(j["tokenizer"], j["tokenizer_finetuned"]),
            "",
            "## World models",
            "",
            f"Open-loop rollouts of {horizon} steps from the first frame of held-out clips (greedy, one sample per",
            "clip): the margin over copying the last frame (positive: the world model is better; ± one standard error",
            "clustered by episode). Token cross-entropy and done F1 are teacher-forced.",
            "",
            *world_model_table({"action": j["wm_action"], "text": j["wm_text"]}),
            "",
            "## Controllability against the simulator",
            "",
            f"The action world model and ManiSkill from the same {len(j['controllability']['subsets'])} x "
            f"{j['controllability']['config']['start_states']} held-out start states under each action sequence "
            f"({j['controllability']['config']['horizon']} policy steps): the perceptual margin over copying the "
            "first frame, and over copying its tokenized reconstruction (what predicting the first frame's tokens "
            "again shows; positive: closer to the simulator; ± one standard error clustered by scene), and the "
            "spread of opposite extremes' final frames relative to the simulator's (1: as far apart). At the "
            "first step, where both start from the same tokens: the share of token positions that change in the "
            "world model and in the simulator's frames tokenized, the model's probability of keeping a token "
            "where the simulator changes it and everywhere, and the hidden motion (tokens the greedy rollout "
            "kept though the model gave keeping them less than even odds).",
            "",
            *controllability_table(j["controllability"]),
            "",
            "## Drift along the policy's own episodes",
            "",
            "Each policy acts in the action world model for an episode as RL w. World Model runs it, and its actions",
            "are replayed in ManiSkill from the same held-out start states: the world model's perceptual margin over",
            "copying the first frame, against the simulator's frames (± one standard error clustered by scene), and",
            "the episodes its done signal calls solved against those the simulator does.",
            "",
            *(drift_table(drift) if drift else ["None configured (evaluation.drift)."]),
            "",
            "## Imagined goals",
            "",
            *goal_table(goals),
            "",
            "## Learned-reward baselines",
            "",
            *(reward_model_table(rewards) if rewards else ["None configured (rl.world_model.rewards)."]),
            "",
            "## Reward validity",
            "",
            *validity_table(validity),
            "",
            *held_arm_table(validity),
            "",
            "## Policies in ManiSkill",
            "",
            *policy_table(j["replay_policy_rate"], policies),
            "",
        ]
    )
