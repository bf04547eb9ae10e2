"""The paper's Table 1 from our evaluation episodes (rule ``table1``), beside the paper's numbers.

A cell is one policy x method x task x domain: the success rate (``success_once``, in percent, as
the paper reports it) over the cell's evaluation episodes, its 95% Wilson interval and episode
count, and the paper's figure with our difference from it (the paper's numbers ship as
``workflow/resources/paper/table1.csv``, from RoboScape-R, arXiv 2512.03556, Table 1). Every RL
method is compared with SFT in the same cell: the difference in success rate with a 95% bootstrap
interval and a two-sided p-value, resampling scenes (out of domain, episodes of one scene share
it) and episodes within them, with a fixed seed, so that the same episodes always give the same
table. Methods beyond the paper's three (the learned-reward baselines) get rows without a paper
figure; the paper's policies we do not run get rows that say so.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from roboscape.sim.catalogue import TASK_TITLES
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
COLUMNS = [
    *KEYS,
    "status",
    "episodes",
    "successes",
    "success_pct",
    "ci95_low_pct",
    "ci95_high_pct",
    "success_at_end_pct",
    "paper_success_pct",
    "difference_from_paper_pct",
    "vs_sft_pct",
    "vs_sft_ci95_low_pct",
    "vs_sft_ci95_high_pct",
    "vs_sft_p",
]


def clustered_bootstrap_difference(
    treated: pd.DataFrame, control: pd.DataFrame, samples: int = 10_000, seed: int = 0
) -> tuple[float, float, float, float]:
    """Difference of success rates (treated - control, in percent), its 95% percentile interval and
    a two-sided p-value, by a bootstrap that resamples each group's scenes and then episodes
    within each drawn scene."""

    def draws(rows: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
        per_scene = rows.groupby("scene_id", sort=True)[METRIC].agg(["sum", "count"])
        k, n = per_scene["sum"].to_numpy(dtype=float), per_scene["count"].to_numpy()
        picked = rng.integers(len(n), size=(samples, len(n)))
        # resampling a scene's episodes with replacement draws its successes from Binomial(n, k / n)
        successes = rng.binomial(n[picked], k[picked] / n[picked])
        return successes.sum(1) / n[picked].sum(1)

    rng = np.random.default_rng(seed)
    diff = 100 * (draws(treated, rng) - draws(control, rng))
    observed = 100 * (treated[METRIC].mean() - control[METRIC].mean())
    low, high = np.percentile(diff, [2.5, 97.5])
    p = min(1.0, 2 * min((diff <= 0).mean(), (diff >= 0).mean()))
    return float(observed), float(low), float(high), float(p)


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
        for task in tasks:
            for domain in DOMAINS:
                cell = eps[(eps["task"] == task) & (eps["domain"] == domain)]
                n, k = len(cell), int(cell[METRIC].sum())
                low, high = wilson_interval(k, n)
                row = {
                    "policy": policy,
                    "method": method,
                    "task": task,
                    "domain": domain,
                    "episodes": n,
                    "successes": k,
                    "success_pct": 100 * k / n if n else np.nan,
                    "ci95_low_pct": 100 * low,
                    "ci95_high_pct": 100 * high,
                    "success_at_end_pct": 100 * cell["success_at_end"].mean() if n else np.nan,
                }
                if sft is not None and method != "sft" and n:
                    base = sft[(sft["task"] == task) & (sft["domain"] == domain)]
                    d, dl, dh, p = clustered_bootstrap_difference(cell, base, samples, seed)
                    row |= {"vs_sft_pct": d, "vs_sft_ci95_low_pct": dl, "vs_sft_ci95_high_pct": dh, "vs_sft_p": p}
                rows.append(row)
    ours = pd.DataFrame(rows)
    paper = paper.rename(columns={"success_pct": "paper_success_pct"})[[*KEYS, "paper_success_pct"]]
    table = ours.merge(paper, on=KEYS, how="left").assign(status="run")
    table["difference_from_paper_pct"] = table["success_pct"] - table["paper_success_pct"]
    not_run = paper[(paper["policy"] != policy) & paper["task"].isin(tasks)].assign(status="not run")
    return pd.concat([table, not_run], ignore_index=True).reindex(columns=COLUMNS)


def _cells(table: pd.DataFrame, fmt) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Column titles (task x domain) and one (row title, cells) per policy x method."""
    tasks = list(dict.fromkeys(table["task"]))
    cols = [(d, t) for d in DOMAINS for t in tasks]
    titles = [f"{d.upper()} {TASK_TITLES[t]}" for d, t in cols]
    rows = []
    for (policy, method), g in table.groupby(["policy", "method"], sort=False):
        by = {(r.domain, r.task): r for r in g.itertuples()}
        title = f"{POLICY_TITLES.get(policy, policy)} {METHOD_TITLES.get(method, method)}"
        rows.append((title, [fmt(by[c]) if c in by else "" for c in cols]))
    return titles, rows


def _ours(r) -> str:
    if r.status != "run":
        return f"not run (paper {r.paper_success_pct:.1f})"
    cell = f"{r.success_pct:.1f} [{r.ci95_low_pct:.0f}, {r.ci95_high_pct:.0f}] n={int(r.episodes)}"
    if pd.notna(r.paper_success_pct):
        cell += f"; paper {r.paper_success_pct:.1f} ({r.difference_from_paper_pct:+.1f})"
    return cell


def _vs_sft(r) -> str:
    if r.status != "run" or pd.isna(r.vs_sft_pct):
        return ""
    return f"{r.vs_sft_pct:+.1f} [{r.vs_sft_ci95_low_pct:+.0f}, {r.vs_sft_ci95_high_pct:+.0f}] p={r.vs_sft_p:.3f}"


def table1_markdown(table: pd.DataFrame, why_not_run: str) -> str:
    """Our cells with the paper's beside them, then each RL method against SFT."""
    out = [
        "## Table 1: success rate (%), ours beside the paper's",
        "",
        "Each cell: our success rate (`success_once`) [95% Wilson interval] and episode count; the paper's",
        "figure (RoboScape-R, arXiv 2512.03556, Table 1) and our difference from it. IND: the training scene,",
        f"new initial states; OOD: unseen objects and object-container pairs. Rows not run: {why_not_run}.",
        "",
    ]
    for fmt, heading in (
        (_ours, None),
        (
            _vs_sft,
            "Against SFT in the same cell: difference [95% bootstrap interval over scenes and episodes], two-sided p",
        ),
    ):
        titles, rows = _cells(table, fmt)
        if heading:
            rows = [(t, c) for t, c in rows if any(c)]
            out += ["", heading, ""]
        out += ["| | " + " | ".join(titles) + " |", "| --- |" + " --- |" * len(titles)]
        out += [f"| {t} | " + " | ".join(c) + " |" for t, c in rows]
    return "\n".join(out) + "\n"


def table1_latex(table: pd.DataFrame) -> str:
    """The first Markdown table as a LaTeX tabular (booktabs)."""
    titles, rows = _cells(table, _ours)
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
