"""The README's results section, made from a tier's generated tables and never typed by hand.

``python -m roboscape.report.readme results/default`` replaces what lies between the README's two
markers with a compact view of that tier's ``tables/table1.csv`` and ``tables/table2.csv`` (rules
``table1`` and ``table2``): each method's success rate (over its training runs) with its 95%
interval beside the paper's, a line per task and domain saying whether our ordering of the methods
is the paper's and whether each RL method's difference from SFT has the paper's sign and is
significant, and the run's wall-clock time (rule ``timings``). The full tables, with episode counts
and bootstrap intervals, stay in the tier's ``tables/`` and ``summary.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from roboscape.report.tables import METHOD_TITLES, POLICY_TITLES, markdown_grid, rl_runs, table1_cells, table2_cells
from roboscape.sim.catalogue import TASK_TITLES
from roboscape.utils.io import read_json

BEGIN = "<!-- results: begin; made by `python -m roboscape.report.readme {outdir}` from its tables, do not edit -->"
END = "<!-- results: end -->"
PAPER_METHODS = ("sft", "rl_maniskill", "rl_world_model")  # the methods the paper's tables compare
SHORT = {"sft": "SFT", "rl_maniskill": "RL-MS", "rl_world_model": "RL-WM"}  # their names in the orderings
ALPHA = 0.05


def _rate(row) -> str:
    ours = f"{row.success_pct:.0f} [{row.ci95_low_pct:.0f}, {row.ci95_high_pct:.0f}]"
    return ours + (f" ({row.paper_success_pct:.0f})" if pd.notna(row.paper_success_pct) else "")


def _order(rates: dict[str, float]) -> str:
    """Methods from most to least successful; ties joined by '='."""
    ranked = sorted(rates.items(), key=lambda item: -item[1])
    text = SHORT[ranked[0][0]]
    for (_, previous), (method, rate) in zip(ranked, ranked[1:], strict=False):
        text += (" = " if rate == previous else " > ") + SHORT[method]
    return text


def _against_sft(row) -> str:
    """An RL cell's difference from SFT: ours with its interval, whether significant, the paper's."""
    if pd.isna(row.vs_sft_pct):
        return ""
    paper = row.paper_success_pct - row.paper_sft if pd.notna(row.paper_success_pct) else float("nan")
    ours = f"{row.vs_sft_pct:+.0f} [{row.vs_sft_ci95_low_pct:+.0f}, {row.vs_sft_ci95_high_pct:+.0f}]"
    verdict = "significant" if row.vs_sft_p < ALPHA else "not significant"
    if pd.isna(paper):
        return f"{ours}, {verdict}"
    if row.vs_sft_pct == 0:
        return f"{ours}, no difference; paper {paper:+.0f}"
    sign = "the paper's sign" if (row.vs_sft_pct > 0) == (paper > 0) else "not the paper's sign"
    return f"{ours}, {verdict}; paper {paper:+.0f}: {sign}"


def orderings(table: pd.DataFrame) -> list[str]:
    """Per policy x task x domain of Table 1: the paper's order of its three methods and ours, and
    each RL method against SFT."""
    cells = table[(table["status"] == "run") & table["method"].isin(PAPER_METHODS)].copy()
    sft = cells[cells["method"] == "sft"].set_index(["policy", "task", "domain"])["paper_success_pct"]
    cells["paper_sft"] = [sft.get(key) for key in zip(cells["policy"], cells["task"], cells["domain"], strict=True)]
    lines = [
        "| policy, task, domain | paper's order | ours | same order | RL-MS - SFT | RL-WM - SFT |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for (policy, task, domain), rows in cells.groupby(["policy", "task", "domain"], sort=False):
        if len(rows) < len(PAPER_METHODS):
            continue
        by = rows.set_index("method")
        paper, ours = _order(by["paper_success_pct"].to_dict()), _order(by["success_pct"].to_dict())
        against = [_against_sft(by.loc[m].rename(m)) for m in PAPER_METHODS[1:]]
        title = f"{POLICY_TITLES.get(policy, policy)}, {TASK_TITLES[task]}, {domain.upper()}"
        lines.append(
            f"| {title} | {paper} | {ours} | {'yes' if paper == ours else 'no'} | " + " | ".join(against) + " |"
        )
    return lines


def results_block(outdir: str | Path, command: str) -> str:
    """The README's results section for the tier whose outputs are in ``outdir``."""
    outdir = Path(outdir)
    table1 = pd.read_csv(outdir / "tables" / "table1.csv")
    table2 = pd.read_csv(outdir / "tables" / "table2.csv")
    totals = outdir / "timings" / "totals.json"
    timings = ""
    if totals.exists():
        t = read_json(totals)
        timings = (
            f"{t['jobs']} jobs, {t['wall_hours']:.1f} h of wall-clock time ({t['job_hours']:.1f} h of job time), "
            f"finished at commit `{t['commit']}`; by stage: `{outdir.as_posix()}/timings/`."
        )
    runs = rl_runs(table1)
    pooled = f", each RL method's pooled over its {runs} PPO runs" if runs > 1 else ", one PPO run an RL policy"
    lines = [
        BEGIN.format(outdir=outdir.as_posix()),
        "",
        f"Made by `{command}`: success rate in ManiSkill (%) [95% Wilson interval]{pooled}, the paper's in",
        f"parentheses (RoboScape-R, arXiv 2512.03556). Episode counts, each run's rate, the differences and their "
        f"bootstrap intervals: `{outdir.as_posix()}/tables/` and `{outdir.as_posix()}/summary.md`.",
        "",
        "**Table 1** (IND: training scenes, new initial states; OOD: unseen objects and object-container pairs)",
        "",
        *markdown_grid(*table1_cells(table1[table1["status"] == "run"], _rate)),
        "",
        "**Table 2** (one policy for Pick and Place and Move to Aim, in domain)",
        "",
        *markdown_grid(*table2_cells(table2, _rate)),
        "",
        f"**Where our ordering matches the paper's** (RL - SFT in points [95% bootstrap interval over runs, scenes "
        f"and episodes], p < {ALPHA}: "
        f"significant; {', '.join(f'{v}: {METHOD_TITLES[k]}' for k, v in SHORT.items())})",
        "",
        *orderings(table1),
        "",
        f"**Time.** {timings}" if timings else "",
        "",
        END,
    ]
    return "\n".join(lines)


def replace_block(readme: str, block: str) -> str:
    """``readme`` with the text from its begin marker to its end marker replaced by ``block``."""
    begin = readme.find("<!-- results: begin")
    end = readme.find(END)
    if begin < 0 or end < begin:
        raise ValueError(f"the README has no results markers ('<!-- results: begin ...' then '{END}')")
    return readme[:begin] + block + readme[end + len(END) :]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", help="the tier's results directory, e.g. results/default")
    parser.add_argument("--readme", default="README.md", help="the README to update in place")
    parser.add_argument(
        "--command", default=None, help="the command that made the results (default: the tier's, from outdir's name)"
    )
    args = parser.parse_args(argv)
    tier = Path(args.outdir).name
    command = args.command or ".venv/bin/snakemake --cores all" + (
        "" if tier == "default" else f" --configfile config/{tier}.yaml"
    )
    readme = Path(args.readme)
    readme.write_text(replace_block(readme.read_text(), results_block(args.outdir, command)))


if __name__ == "__main__":
    main()
