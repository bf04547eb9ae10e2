"""The README's results section is made from a tier's tables: its grid, the orderings against the
paper's, and the replacement between the markers."""

import json
from pathlib import Path

import pandas as pd
import pytest

from roboscape.report.readme import BEGIN, END, orderings, replace_block, results_block

REPO = Path(__file__).resolve().parents[2]


def cell(method, task, domain, ours, paper, vs_sft=None, p=None, status="run", runs=1):
    return {
        "policy": "mlp",
        "method": method,
        "task": task,
        "domain": domain,
        "status": status,
        "success_pct": ours,
        "ci95_low_pct": ours - 10,
        "ci95_high_pct": ours + 10,
        "paper_success_pct": paper,
        "vs_sft_pct": vs_sft,
        "vs_sft_ci95_low_pct": None if vs_sft is None else vs_sft - 20,
        "vs_sft_ci95_high_pct": None if vs_sft is None else vs_sft + 20,
        "vs_sft_p": p,
        "runs": runs,
    }


@pytest.fixture
def table1():
    return pd.DataFrame(
        [
            cell("sft", "push", "ind", 25.0, 40.0),
            cell("rl_maniskill", "push", "ind", 33.0, 50.0, vs_sft=8.0, p=0.64),
            cell("rl_world_model", "push", "ind", 12.0, 60.0, vs_sft=-13.0, p=0.01),
            cell("rl_world_model_proxy", "push", "ind", 20.0, None, vs_sft=-5.0, p=0.5),
            cell("sft", "push", "ood", 10.0, 20.0),
            cell("rl_maniskill", "push", "ood", 20.0, 30.0, vs_sft=10.0, p=0.2),
            cell("rl_world_model", "push", "ood", 30.0, 35.0, vs_sft=20.0, p=0.03),
        ]
    )


def test_orderings_say_where_ours_is_the_papers(table1):
    lines = orderings(table1)
    ind = next(line for line in lines if "Push, IND" in line)
    ood = next(line for line in lines if "Push, OOD" in line)
    assert "RL-WM > RL-MS > SFT" in ind  # the paper's
    assert "RL-MS > SFT > RL-WM | no" in ind  # ours
    assert "-13 [-33, +7], significant; paper +20: not the paper's sign" in ind
    assert "+8 [-12, +28], not significant; paper +10: the paper's sign" in ind
    assert "| no |" in ind and "| yes |" in ood
    assert "RL-WM > RL-MS > SFT | yes" in ood


def test_the_block_holds_both_tables_and_the_command(tmp_path, table1):
    tables = tmp_path / "results" / "default" / "tables"
    tables.mkdir(parents=True)
    table1.to_csv(tables / "table1.csv", index=False)
    table2 = (
        table1[table1["domain"] == "ind"].assign(task="pick_place", object="peach").drop(columns=["domain", "status"])
    )
    table2.to_csv(tables / "table2.csv", index=False)
    block = results_block(tmp_path / "results" / "default", ".venv/bin/snakemake --cores all")
    assert block.startswith("<!-- results: begin") and block.endswith(END)
    assert "Made by `.venv/bin/snakemake --cores all`" in block and "one PPO run an RL policy" in block
    assert "| MLP Supervised Finetune | 25 [15, 35] (40) | 10 [0, 20] (20) |" in block
    assert "| MLP RL w. World Model (proxy reward) | 20 [10, 30] |  |" in block  # no paper figure, no OOD cell
    assert "| Pick and Place: peach |" in block
    assert "Time." not in block  # no timings (the rule timings) yet: the block says nothing of time
    (tmp_path / "results" / "default" / "timings").mkdir()
    totals = {"jobs": 3, "wall_hours": 4.5, "job_hours": 7.0, "cpu_hours": 5.0, "commit": "abc1234"}
    (tmp_path / "results" / "default" / "timings" / "totals.json").write_text(json.dumps(totals))
    block = results_block(tmp_path / "results" / "default", ".venv/bin/snakemake --cores all")
    assert "3 jobs, 4.5 h of wall-clock time (7.0 h of job time), finished at commit `abc1234`" in block
    table1.assign(runs=table1["method"].map(lambda m: 1 if m == "sft" else 3)).to_csv(
        tables / "table1.csv", index=False
    )
    block = results_block(tmp_path / "results" / "default", ".venv/bin/snakemake --cores all")
    assert "each RL method's pooled over its 3 PPO runs" in block


def test_the_block_replaces_only_what_lies_between_the_markers():
    readme = "intro\n" + BEGIN.format(outdir="results/default") + "\nold\n" + END + "\nrest\n"
    assert replace_block(readme, "NEW") == "intro\nNEW\nrest\n"
    with pytest.raises(ValueError, match="no results markers"):
        replace_block("no markers", "NEW")


def test_the_readme_has_the_markers_once():
    readme = (REPO / "README.md").read_text()
    assert readme.count("<!-- results: begin") == 1 and readme.count(END) == 1
    assert readme.index("<!-- results: begin") < readme.index(END)
