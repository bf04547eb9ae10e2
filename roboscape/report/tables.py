"""The paper's Tables 1 and 2 from our evaluation episodes (rules ``table1``, ``table2``), beside the
paper's numbers.

A cell is one policy x method x task x domain: the success rate (``success_once``, in percent, as
the paper reports it) over the cell's evaluation episodes, pooled over the method's training runs
(an RL method's PPO runs, ``rl.runs``; SFT's one), its 95% Wilson interval over those episodes, the
episode count, each run's rate, and the paper's figure with our difference from it (the paper's
numbers ship as ``workflow/resources/paper/table1.csv``, from RoboScape-R, arXiv 2512.03556, Table
1). Every RL method is compared with SFT in the same cell: the difference in success rate with a
95% bootstrap interval and a two-sided p-value, resampling training runs, then scenes within a run
(out of domain, episodes of one scene share it), then episodes within them, with a fixed seed, so
that the same episodes always give the same table. The run level is what makes the interval hold a
rerun's variance: one PPO run's luck can move a cell by tens of points (docs/rl-history.md).
Methods beyond the paper's three (the learned-reward baselines) get rows without a paper figure;
the paper's policies we do not run get rows that say so.

Table 2's cells are the multi-task policy's scenes (a task x object each), with the same columns
and, as the paper's arrows give it, the relative change against SFT (``workflow/resources/paper/
table2.csv``: RoboScape-R, Table 2).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from roboscape.sim.catalogue import TASK_TITLES
from roboscape.utils.io import atomic_path
from roboscape.utils.stats import wilson_interval

METHOD_TITLES = {
    "sft": "Supervised Finetune",
    "rl_maniskill": "RL w. ManiSkill",
    "rl_world_model": "RL w. World Model",
    "rl_world_model_embedding": "RL w. World Model (embedding reward)",
    "rl_world_model_proxy": "RL w. World Model (proxy reward)",
}
POLICY_TITLES = {"mlp": "MLP", "openvla": "OpenVLA"}
DOMAINS = ("ind", "ood")
METRIC = "success_once"
KEYS = ["policy", "method", "task", "domain"]
CELL_COLUMNS = [
    "episodes",
    "successes",
    "success_pct",
    "ci95_low_pct",
    "ci95_high_pct",
    "runs",
    "run_success_pct",
    "success_at_end_pct",
    "paper_success_pct",
    "difference_from_paper_pct",
    "vs_sft_pct",
    "vs_sft_ci95_low_pct",
    "vs_sft_ci95_high_pct",
    "vs_sft_p",
]
COLUMNS = [*KEYS, "status", *CELL_COLUMNS]


def clustered_bootstrap_difference(
    treated: pd.DataFrame, control: pd.DataFrame, samples: int = 10_000, seed: int = 0
) -> tuple[float, float, float, float]:
    """Difference of success rates (treated - control, in percent), its 95% percentile interval and
    a two-sided p-value, by a bootstrap that resamples each group's training runs (its ``run``
    column), then scenes within each drawn run, then episodes within each drawn scene. A group of
    one run (SFT) resamples its scenes and episodes only."""

    def draws(rows: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
        runs = [g for _, g in rows.groupby("run", sort=True)]
        slots = (samples, len(runs))  # a bootstrap sample draws as many runs as there are
        picked = rng.integers(len(runs), size=slots) if len(runs) > 1 else np.zeros(slots, dtype=int)
        successes, counts = np.zeros(slots), np.zeros(slots)
        for r, g in enumerate(runs):
            per_scene = g.groupby("scene_id", sort=True)[METRIC].agg(["sum", "count"])
            k, n = per_scene["sum"].to_numpy(dtype=float), per_scene["count"].to_numpy()
            mine = picked == r  # the slots this run fills
            scenes = rng.integers(len(n), size=(int(mine.sum()), len(n)))
            # resampling a scene's episodes with replacement draws its successes from Binomial(n, k / n)
            successes[mine] = rng.binomial(n[scenes], k[scenes] / n[scenes]).sum(-1)
            counts[mine] = n[scenes].sum(-1)
        return successes.sum(1) / counts.sum(1)

    rng = np.random.default_rng(seed)
    diff = 100 * (draws(treated, rng) - draws(control, rng))
    observed = 100 * (treated[METRIC].mean() - control[METRIC].mean())
    low, high = np.percentile(diff, [2.5, 97.5])
    p = min(1.0, 2 * min((diff <= 0).mean(), (diff >= 0).mean()))
    return float(observed), float(low), float(high), float(p)


def _cell(cell: pd.DataFrame, base: pd.DataFrame | None, samples: int, seed: int) -> dict:
    """A cell's columns: its episode count, successes, success rate with its 95% Wilson interval
    (over the episodes of all its runs), its runs and each run's success rate, success at the end
    (in percent), and, given the SFT episodes of the same cell (``base``), the difference from SFT
    with its bootstrap interval and p-value."""
    n, k = len(cell), int(cell[METRIC].sum())
    low, high = wilson_interval(k, n)
    per_run = 100 * cell.groupby("run", sort=True)[METRIC].mean()
    row = {
        "episodes": n,
        "successes": k,
        "success_pct": 100 * k / n if n else np.nan,
        "ci95_low_pct": 100 * low,
        "ci95_high_pct": 100 * high,
        "runs": len(per_run),
        "run_success_pct": ";".join(f"{r:.1f}" for r in per_run),
        "success_at_end_pct": 100 * cell["success_at_end"].mean() if n else np.nan,
    }
    if base is not None and n:
        d, dl, dh, p = clustered_bootstrap_difference(cell, base, samples, seed)
        row |= {"vs_sft_pct": d, "vs_sft_ci95_low_pct": dl, "vs_sft_ci95_high_pct": dh, "vs_sft_p": p}
    return row


def table1(
    episodes: Mapping[str, pd.DataFrame], paper: pd.DataFrame, policy: str, samples: int = 10_000, seed: int = 0
) -> pd.DataFrame:
    """One row per (policy, method, task, domain): ours for ``episodes`` (method -> every episode of
    that method, as ``policy_results`` writes them), the paper's beside it; the paper's other
    policies as rows marked not run."""
    rows = []
    tasks = sorted({t for e in episodes.values() for t in e["task"]}, key=list(TASK_TITLES).index)
    sft = episodes.get("sft")
    for method, eps in episodes.items():
        for task in [t for t in tasks if (eps["task"] == t).any()]:  # a learned-reward baseline runs on some tasks
            for domain in DOMAINS:
                cell = eps[(eps["task"] == task) & (eps["domain"] == domain)]
                base = (
                    None if sft is None or method == "sft" else sft[(sft["task"] == task) & (sft["domain"] == domain)]
                )
                keys = {"policy": policy, "method": method, "task": task, "domain": domain}
                rows.append(keys | _cell(cell, base, samples, seed))
    ours = pd.DataFrame(rows)
    paper = paper.rename(columns={"success_pct": "paper_success_pct"})[[*KEYS, "paper_success_pct"]]
    table = ours.merge(paper, on=KEYS, how="left").assign(status="run")
    table["difference_from_paper_pct"] = table["success_pct"] - table["paper_success_pct"]
    not_run = paper[(paper["policy"] != policy) & paper["task"].isin(tasks)].assign(status="not run")
    return pd.concat([table, not_run], ignore_index=True).reindex(columns=COLUMNS)


def _rows(table: pd.DataFrame, fmt, keys: tuple[str, str], cols: list[tuple]) -> list[tuple[str, list[str]]]:
    """One (row title, cells) per policy x method: ``fmt`` of the row whose ``keys`` are each of ``cols``."""
    rows = []
    for (policy, method), g in table.groupby(["policy", "method"], sort=False):
        by = {tuple(getattr(r, k) for k in keys): r for r in g.itertuples()}
        title = f"{POLICY_TITLES.get(policy, policy)} {METHOD_TITLES.get(method, method)}"
        rows.append((title, [fmt(by[c]) if c in by else "" for c in cols]))
    return rows


def table1_cells(table: pd.DataFrame, fmt) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Table 1's column titles (domain x task) and one (row title, cells) per policy x method, each
    cell ``fmt`` of its row."""
    tasks = list(dict.fromkeys(table["task"]))
    cols = [(d, t) for d in DOMAINS for t in tasks]
    return [f"{d.upper()} {TASK_TITLES[t]}" for d, t in cols], _rows(table, fmt, ("domain", "task"), cols)


def _markdown(intro: list[str], cells, ours, vs_sft, vs_sft_heading: str) -> str:
    """``intro``, then the table of ``cells(ours)`` and, under its heading, that of ``cells(vs_sft)``
    without the rows that have nothing to compare (SFT's)."""
    out = [*intro, ""]
    for fmt, heading in ((ours, None), (vs_sft, vs_sft_heading)):
        titles, rows = cells(fmt)
        if heading:
            rows = [(t, c) for t, c in rows if any(c)]
            out += ["", heading, ""]
        out += markdown_grid(titles, rows)
    return "\n".join(out) + "\n"


def markdown_grid(titles: list[str], rows: list[tuple[str, list[str]]]) -> list[str]:
    """The lines of a Markdown table: ``titles`` after an empty corner, then each (row title, cells)."""
    return [
        "| | " + " | ".join(titles) + " |",
        "| --- |" + " --- |" * len(titles),
        *(f"| {t} | " + " | ".join(c) + " |" for t, c in rows),
    ]


def _rate(r) -> str:
    """A cell's success rate, interval and episode count, and with several runs each run's rate."""
    cell = f"{r.success_pct:.1f} [{r.ci95_low_pct:.0f}, {r.ci95_high_pct:.0f}] n={int(r.episodes)}"
    if r.runs > 1:
        cell += f" (runs {', '.join(f'{float(x):.0f}' for x in r.run_success_pct.split(';'))})"
    return cell


def rl_runs(table: pd.DataFrame) -> int:
    """The most training runs an RL method's cell of ``table`` pools (1 with no RL cell run: rows not
    run have none)."""
    runs = table.loc[table["method"] != "sft", "runs"].max()
    return int(runs) if pd.notna(runs) else 1


def _runs_note(table: pd.DataFrame) -> str:
    """What the difference's interval holds: the RL methods' runs, or a warning that there is one."""
    if (runs := rl_runs(table)) > 1:
        return f"(each RL method's {runs} PPO runs from the one SFT policy, resampled first)"
    return "(one PPO run a policy, rl.runs: the interval does not hold what another training seed would give)"


def _ours(r) -> str:
    if r.status != "run":
        return f"not run (paper {r.paper_success_pct:.1f})"
    cell = _rate(r)
    if pd.notna(r.paper_success_pct):
        cell += f"; paper {r.paper_success_pct:.1f} ({r.difference_from_paper_pct:+.1f})"
    return cell


def _vs_sft(r) -> str:
    if r.status != "run" or pd.isna(r.vs_sft_pct):
        return ""
    return f"{r.vs_sft_pct:+.1f} [{r.vs_sft_ci95_low_pct:+.0f}, {r.vs_sft_ci95_high_pct:+.0f}] p={r.vs_sft_p:.3f}"


def table1_markdown(table: pd.DataFrame, why_not_run: str) -> str:
    """Our cells with the paper's beside them, then each RL method against SFT."""
    intro = [
        "## Table 1: success rate (%), ours beside the paper's",
        "",
        "Each cell: our success rate (`success_once`, pooled over a method's training runs) [95% Wilson interval",
        "over the episodes] and episode count, each run's rate with several runs; the paper's figure",
        "(RoboScape-R, arXiv 2512.03556, Table 1) and our difference from it. IND: the training scene,",
        f"new initial states; OOD: unseen objects and object-container pairs. Rows not run: {why_not_run}.",
        "An empty cell: a learned-reward baseline not run on that task (rl.world_model.learned_reward_tasks).",
    ]
    heading = (
        "Against SFT in the same cell: difference [95% bootstrap interval over runs, scenes and episodes], two-sided p "
        + _runs_note(table)
    )
    return _markdown(intro, lambda fmt: table1_cells(table, fmt), _ours, _vs_sft, heading)


def table1_latex(table: pd.DataFrame) -> str:
    """The first Markdown table as a LaTeX tabular (booktabs)."""
    return _latex(*table1_cells(table, _ours))


def _latex(titles: list[str], rows: list[tuple[str, list[str]]]) -> str:
    esc = lambda s: s.replace("&", r"\&").replace("%", r"\%")  # noqa: E731
    lines = [
        r"\begin{tabular}{l" + "l" * len(titles) + "}",
        r"\toprule",
        " & ".join(["", *map(esc, titles)]) + r" \\",
        r"\midrule",
        *(" & ".join([esc(t), *map(esc, c)]) + r" \\" for t, c in rows),
        r"\bottomrule",
        r"\end{tabular}",
    ]
    return "\n".join(lines) + "\n"


TABLE2_KEYS = ["policy", "method", "task", "object"]
TABLE2_COLUMNS = [*TABLE2_KEYS, "scene_id", *CELL_COLUMNS, "vs_sft_relative", "paper_vs_sft_relative"]


def table2(
    episodes: Mapping[str, pd.DataFrame], paper: pd.DataFrame, policy: str, samples: int = 10_000, seed: int = 0
) -> pd.DataFrame:
    """The paper's Table 2 (the multi-task policy of Pick and Place and Move to Aim): one row per
    method x task x object, each a single scene, with the columns of Table 1's cells and the
    relative change against SFT that the paper's arrows give ((RL - SFT) / SFT), ours and the
    paper's. ``episodes`` maps a method to its multi-task evaluation episodes, with an ``object``
    column."""
    rows = []
    sft = episodes.get("sft")
    for method, eps in episodes.items():
        cells = sorted(eps.groupby(["task", "object"]), key=lambda c: (list(TASK_TITLES).index(c[0][0]), c[0][1]))
        for (task, obj), cell in cells:
            base = None if sft is None or method == "sft" else sft[(sft["task"] == task) & (sft["object"] == obj)]
            row = {"policy": policy, "method": method, "task": task, "object": obj}
            row |= {"scene_id": ";".join(sorted(set(cell["scene_id"]))), **_cell(cell, base, samples, seed)}
            if base is not None:
                rate = base[METRIC].mean()
                row["vs_sft_relative"] = row["vs_sft_pct"] / (100 * rate) if rate > 0 else np.nan
            rows.append(row)
    paper = paper.rename(columns={"success_pct": "paper_success_pct"})
    paper_sft = paper[paper["method"] == "sft"].set_index(["task", "object"])["paper_success_pct"]
    paper["paper_vs_sft_relative"] = [
        np.nan if m == "sft" else (s - paper_sft[(t, o)]) / paper_sft[(t, o)]
        for m, t, o, s in zip(paper["method"], paper["task"], paper["object"], paper["paper_success_pct"], strict=True)
    ]
    table = pd.DataFrame(rows).merge(
        paper[["method", "task", "object", "paper_success_pct", "paper_vs_sft_relative"]],
        on=["method", "task", "object"],
        how="left",
    )
    table["difference_from_paper_pct"] = table["success_pct"] - table["paper_success_pct"]
    return table.reindex(columns=TABLE2_COLUMNS).reset_index(drop=True)


def _arrow(relative: float) -> str:
    """A relative change as the paper's arrows write it (up .27 = 27% above SFT)."""
    if pd.isna(relative):
        return ""
    return f"{'↑' if relative >= 0 else '↓'}{abs(relative):.2f}".replace("0.", ".", 1)


def table2_cells(table: pd.DataFrame, fmt) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Table 2's column titles (task x object) and one (row title, cells) per policy x method."""
    cols = list(dict.fromkeys(zip(table["task"], table["object"], strict=True)))
    return [f"{TASK_TITLES[t]}: {o}" for t, o in cols], _rows(table, fmt, ("task", "object"), cols)


def _ours2(r) -> str:
    cell = _rate(r)
    if pd.notna(r.paper_success_pct):
        cell += f"; paper {r.paper_success_pct:.1f} ({r.difference_from_paper_pct:+.1f})"
    return cell


def _vs_sft2(r) -> str:
    if pd.isna(r.vs_sft_pct):
        return ""
    cell = f"{r.vs_sft_pct:+.1f} [{r.vs_sft_ci95_low_pct:+.0f}, {r.vs_sft_ci95_high_pct:+.0f}] p={r.vs_sft_p:.3f}"
    cell += f" {_arrow(r.vs_sft_relative)}" if pd.notna(r.vs_sft_relative) else ""
    return cell + (f"; paper {_arrow(r.paper_vs_sft_relative)}" if pd.notna(r.paper_vs_sft_relative) else "")


def table2_markdown(table: pd.DataFrame, scenes: str) -> str:
    """Our cells with the paper's beside them, then each RL method against SFT with the arrows."""
    intro = [
        "## Table 2: multi-task success rate (%), ours beside the paper's",
        "",
        "One policy learns Pick and Place and Move to Aim together (SFT, then RL w. ManiSkill with each task's rule",
        "reward, or RL w. World Model with the general reward); each cell is one of its in-domain scenes, from new",
        "initial states. Cell: our success rate (`success_once`, pooled over a method's training runs) [95% Wilson",
        "interval over the episodes] and episode count, each run's rate with several runs; the paper's figure",
        "(RoboScape-R, arXiv 2512.03556, Table 2) and our difference from it.",
        f"Scenes: {scenes}.",
    ]
    heading = (
        "Against SFT in the same cell: difference [95% bootstrap interval over runs, scenes and episodes], two-sided"
        f" p, and the relative change (the paper's arrows: (RL - SFT) / SFT), ours then the paper's {_runs_note(table)}"
    )
    return _markdown(intro, lambda fmt: table2_cells(table, fmt), _ours2, _vs_sft2, heading)


def table2_latex(table: pd.DataFrame) -> str:
    """The first Markdown table of Table 2 as a LaTeX tabular (booktabs)."""
    return _latex(*table2_cells(table, _ours2))


def write_table(table: pd.DataFrame, markdown: str, latex: str, csv_path, md_path, tex_path) -> None:
    """A table's three files (CSV with 4 decimals, Markdown, LaTeX), each written atomically."""
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    with atomic_path(md_path) as tmp:
        tmp.write_text(markdown)
    with atomic_path(tex_path) as tmp:
        tmp.write_text(latex)
