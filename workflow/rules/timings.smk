# Where the run's time went: every job's Snakemake benchmark, read after everything else has run.


rule timings:
    """The run's wall-clock time, and each rule's jobs, job and CPU hours and peak memory, from the
    benchmarks of every job under the tier's outdir, with a timeline of the jobs."""
    input:
        lib=library("timings.py"),
        targets=TARGETS,  # everything else: the timings come last
    output:
        csv=f"{OUT}/timings/timings.csv",
        md=report(f"{OUT}/timings/timings.md", caption=caption("timings"), category="0. Summary", labels={"figure": "time per stage"}),
        png=report(f"{OUT}/timings/timeline.png", caption=caption("timings"), category="0. Summary", labels={"figure": "timeline"}),
        pdf=f"{OUT}/timings/timeline.pdf",
        totals=f"{OUT}/timings/totals.json",
    params:
        benchmarks=f"{OUT}/benchmarks",
        tier=Path(OUT).name,
    log:
        f"{OUT}/logs/timings.log",
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/timings.py"
