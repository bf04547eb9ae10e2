"""The Snakemake report of the tiny tier: every figure a rule makes is in it, with its caption."""

from __future__ import annotations

import re

import pytest

from snakemake_helpers import snakemake

pytestmark = pytest.mark.slow


def test_the_report_holds_every_figure(tiny_run):
    report = tiny_run.workdir / "report.html"
    snakemake(tiny_run.workdir, "--configfile", str(tiny_run.configfile), "--report", str(report))
    html = report.read_text()
    out = tiny_run.out
    figures = [
        *out.glob("previews/*.gif"),
        *out.glob("previews/*.png"),
        out / "tokenizer/finetuned/reconstructions.png",
        *out.glob("world_model/*/eval/*.png"),
        *out.glob("world_model/*/eval/*.gif"),
        *out.glob("world_model/action/controllability/*.png"),
        *out.glob("world_model/action/controllability/*.gif"),
        out / "summary.md",
        out / "tables/table1.md",
        out / "tables/table2.md",
        *out.glob("figures/*.png"),
        *out.glob("figures/*.gif"),
        out / "timings/timings.md",
        out / "timings/timeline.png",
    ]
    assert len(figures) == 8 + 1 + 2 * 6 + 2 + 5 + 2 + 5 + 1 + 2  # the last: Table 2, the timings
    # each embedded (data URI) under its path in the results
    missing = [
        str(f.relative_to(out))
        for f in figures
        if f'"{f.relative_to(tiny_run.workdir)}": {{"name": "{f.name}"' not in html
    ]
    assert missing == []
    assert html.count("data:image/") >= len(figures) - 1
    for caption in (
        "the first optimal one, one of each suboptimal method",
        "the paper's Figure 9",
        "open-loop rollout from the same first frame",
        "the simulator's frames on the left of each pair",
        "The paper's Figure 2",
        "The paper's Figure 5 (out of domain)",
        "The paper's Table 2 from this run",
        "How long the run took and where its time went",
    ):
        assert caption in html
    assert re.search(r"RoboScape-R", html)  # workflow.rst, the method's description
