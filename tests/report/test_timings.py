"""The run's timings from Snakemake benchmark files: rules from paths, start times from
modification times, the wall-clock time as the union of the jobs' intervals."""

import json
import os

import numpy as np
import pytest

from roboscape.report.timings import FILES, busy_seconds, read_benchmarks, run_totals, stage_timings, write_timings

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def benchmark(root, name, seconds, cpu, rss, end):
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:00\t{rss}\t0\t0\t0\t0\t0\t0\t{cpu}\n")
    os.utime(path, (end, end))


@pytest.fixture
def jobs(tmp_path):
    t0 = 1_700_000_000
    benchmark(tmp_path, "scenes.tsv", 10, 5, 100, t0 + 10)  # 0-10
    benchmark(tmp_path, "trajectories/push_000.tsv", 100, 90, 2000, t0 + 110)  # 10-110
    benchmark(tmp_path, "trajectories/pull_000.tsv", 50, 50, 1000, t0 + 70)  # 20-70, beside push
    # stopped at 110, resumed an hour later: 3710-3910
    benchmark(tmp_path, "rl_world_model/rl_world_model_general_push.tsv", 200, 380, 4096, t0 + 3910)
    return read_benchmarks(tmp_path)


def test_rules_and_intervals_come_from_paths_and_modification_times(jobs):
    by_job = jobs.set_index("job")
    assert sorted(jobs["rule"]) == ["rl_world_model", "scenes", "trajectories", "trajectories"]
    assert by_job.loc["pull_000", "rule"] == "trajectories" and by_job.loc["", "rule"] == "scenes"
    assert by_job.loc["pull_000", "end"] - by_job.loc["pull_000", "start"] == pytest.approx(50)
    assert by_job.loc["push_000", "cpu_seconds"] == 90 and by_job.loc["push_000", "max_rss_mb"] == 2000


def test_the_wall_clock_counts_overlaps_once_and_pauses_not_at_all(jobs):
    assert busy_seconds(np.array([0.0, 5, 20]), np.array([10.0, 8, 30])) == 20
    totals = run_totals(jobs)
    assert totals["wall_hours"] * 3600 == pytest.approx(110 + 200)
    assert totals["job_hours"] * 3600 == pytest.approx(360) and totals["cpu_hours"] * 3600 == pytest.approx(525)


def test_stages_are_in_the_order_they_started(jobs):
    stages = stage_timings(jobs)
    assert list(stages["rule"]) == ["scenes", "trajectories", "rl_world_model"]
    trajectories = stages.set_index("rule").loc["trajectories"]
    assert trajectories["jobs"] == 2 and trajectories["job_hours"] * 3600 == pytest.approx(150)
    assert trajectories["longest_job_min"] * 60 == pytest.approx(100)
    assert stages["share"].sum() == pytest.approx(1.0)


def test_the_files_are_written(tmp_path, jobs):
    out = tmp_path / "out"
    totals = write_timings(tmp_path, "tiny", out)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    page = (out / "timings.md").read_text()
    assert f"{totals['wall_hours']:.2f} h of wall-clock time" in page and "| trajectories | 2 |" in page
    assert json.loads((out / "totals.json").read_text()) == totals


def test_no_benchmarks_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no benchmark files"):
        write_timings(tmp_path, "tiny", tmp_path / "out")
