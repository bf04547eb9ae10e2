"""Where a run's time went, stage by stage, from Snakemake's benchmark files, and how long it took.

Every rule writes a benchmark, ``<outdir>/benchmarks/<rule>.tsv`` or ``<outdir>/benchmarks/<rule>/<wildcards>.tsv``:
the job's wall-clock seconds, CPU seconds and peak memory. Snakemake writes the file when the job
ends, so its modification time less its seconds is when the job started. The run's wall-clock time
is then the union of its jobs' intervals -- the time at least one job was running -- so that a run
stopped and resumed, or rerun in part, is not charged for the time between.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from roboscape.report.paper_style import paper_style, plt, save_png_pdf
from roboscape.utils.io import atomic_path, write_json

COLUMNS = ["rule", "job", "seconds", "cpu_seconds", "max_rss_mb", "start", "end"]


def read_benchmarks(root: str | Path) -> pd.DataFrame:
    """One row per benchmark file under ``root``: its rule (the first part of its path), the job
    (the rest), the job's wall-clock and CPU seconds, its peak resident memory in MB, and when it
    started and ended (seconds since the epoch). A benchmark of several repeats sums them."""
    root = Path(root)
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        relative = path.relative_to(root).with_suffix("")
        table = pd.read_csv(path, sep="\t")
        measured = {
            column: float(pd.to_numeric(table[column], errors="coerce").fillna(0.0).agg(how))
            for column, how in (("s", "sum"), ("cpu_time", "sum"), ("max_rss", "max"))
        }
        end = path.stat().st_mtime
        rows.append(
            (
                relative.parts[0],
                "/".join(relative.parts[1:]),
                measured["s"],
                measured["cpu_time"],
                measured["max_rss"],
                end - measured["s"],
                end,
            )
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def merged_intervals(starts: np.ndarray, ends: np.ndarray) -> list[tuple[float, float]]:
    """The union of the intervals [start, end), as disjoint intervals in time order."""
    merged: list[list[float]] = []
    for start, end in sorted(zip(starts, ends, strict=True)):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def busy_seconds(starts: np.ndarray, ends: np.ndarray) -> float:
    """The length of the union of the intervals: the time at least one job ran."""
    return float(sum(end - start for start, end in merged_intervals(starts, ends)))


def stage_timings(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per rule, in the order the rules first started: its jobs, their summed wall-clock and
    (sampled) CPU hours, its longest job in minutes, its peak memory in GB, and its share of the
    run's job time."""
    by_rule = jobs.groupby("rule", sort=False)
    table = pd.DataFrame(
        {
            "jobs": by_rule.size(),
            "job_hours": by_rule["seconds"].sum() / 3600,
            "cpu_hours": by_rule["cpu_seconds"].sum() / 3600,
            "longest_job_min": by_rule["seconds"].max() / 60,
            "peak_rss_gb": by_rule["max_rss_mb"].max() / 1024,
            "first_start": by_rule["start"].min(),
        }
    )
    table["share"] = table["job_hours"] / max(table["job_hours"].sum(), 1e-12)
    return table.sort_values(["first_start", "job_hours"]).drop(columns="first_start").reset_index()


def run_totals(jobs: pd.DataFrame) -> dict[str, float]:
    """The run as a whole: its wall-clock hours (the jobs' intervals united), and the summed job
    and CPU hours."""
    return {
        "jobs": len(jobs),
        "wall_hours": busy_seconds(jobs["start"].to_numpy(), jobs["end"].to_numpy()) / 3600,
        "job_hours": float(jobs["seconds"].sum()) / 3600,
        "cpu_hours": float(jobs["cpu_seconds"].sum()) / 3600,
    }


def timings_markdown(stages: pd.DataFrame, totals: dict[str, float], tier: str) -> str:
    """The run's totals in a sentence and its stages as a Markdown table."""
    lines = [
        f"# Where the {tier} tier's time went",
        "",
        f"{int(totals['jobs'])} jobs ran for **{totals['wall_hours']:.2f} h of wall-clock time** (the time at least "
        f"one was running) and {totals['job_hours']:.2f} h of job time. From the rules' Snakemake benchmarks "
        "(`benchmarks/`): a job started at its benchmark's modification time less its seconds. Snakemake samples "
        "a job's CPU time (every second, then every 30 s after the first 30), so a job's last seconds go "
        f"uncounted and short jobs' CPU hours are low; sampled, they sum to {totals['cpu_hours']:.2f} h.",
        "",
        "| rule | jobs | job hours | CPU hours (sampled) | longest job (min) | peak memory (GB) | share of job time |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in stages.itertuples():
        lines.append(
            f"| {row.rule} | {row.jobs} | {row.job_hours:.2f} | {row.cpu_hours:.2f} | {row.longest_job_min:.1f} "
            f"| {row.peak_rss_gb:.2f} | {row.share:.0%} |"
        )
    return "\n".join(lines) + "\n"


def timeline_figure(jobs: pd.DataFrame, stages: pd.DataFrame, png: str | Path, pdf: str | Path) -> None:
    """Every job as a bar from its start to its end, a row per rule in the order the rules first
    started; the gaps of a stopped and resumed run are cut out, so the axis is the run's own time."""
    paper_style()
    order = list(stages["rule"])
    starts, ends = jobs["start"].to_numpy(), jobs["end"].to_numpy()
    shift = _busy_clock(starts, ends)
    unit, name = (3600, "hours") if shift(ends.max()) > 2 * 3600 else (60, "minutes")
    fig, ax = plt.subplots(figsize=(8, 0.25 * len(order) + 1.2))
    palette = plt.get_cmap("tab20")
    for row, rule in enumerate(order):
        mask = (jobs["rule"] == rule).to_numpy()
        spans = [
            (shift(s) / unit, max(shift(e) - shift(s), 1.0) / unit)
            for s, e in zip(starts[mask], ends[mask], strict=True)
        ]
        ax.broken_barh(spans, (row - 0.4, 0.8), facecolors=palette(row % 20), alpha=0.7)
    ax.set_yticks(range(len(order)), order)
    ax.invert_yaxis()
    ax.set_xlabel(f"{name} of the run (pauses cut out)")
    ax.set_title("Jobs over the run, per rule")
    fig.tight_layout()
    save_png_pdf(fig, png, pdf)


def _busy_clock(starts: np.ndarray, ends: np.ndarray):
    """A map from a time to the run's own clock: seconds since the first job started, less every
    interval in which no job ran."""
    merged = merged_intervals(starts, ends)
    opens = np.array([start for start, _ in merged])
    pauses = np.cumsum([0.0] + [later[0] - earlier[1] for earlier, later in zip(merged, merged[1:], strict=False)])

    def clock(time: float) -> float:
        index = max(int(np.searchsorted(opens, time, side="right")) - 1, 0)
        return time - opens[0] - pauses[index]

    return clock


FILES = ("timings.csv", "timings.md", "timeline.png", "timeline.pdf", "totals.json")  # what write_timings writes


def write_timings(root: str | Path, tier: str, outdir: str | Path, commit: str = "unknown") -> dict:
    """Read the benchmarks under ``root`` and write ``FILES`` into ``outdir``: the per-rule table
    (CSV and Markdown), the timeline (PNG and PDF) and the run's totals (JSON, with ``commit``, the
    code the run finished on); return the totals."""
    jobs = read_benchmarks(root)
    if jobs.empty:
        raise ValueError(f"no benchmark files under {root}: the timings read the jobs' Snakemake benchmarks")
    outdir = Path(outdir)
    stages = stage_timings(jobs)
    totals = {**run_totals(jobs), "commit": commit}
    with atomic_path(outdir / "timings.csv") as tmp:
        stages.to_csv(tmp, index=False, float_format="%.4f")
    with atomic_path(outdir / "timings.md") as tmp:
        tmp.write_text(timings_markdown(stages, totals, tier))
    timeline_figure(jobs, stages, outdir / "timeline.png", outdir / "timeline.pdf")
    write_json(outdir / "totals.json", totals)
    return totals
