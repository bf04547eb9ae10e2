"""Rule `figure_learning_curves`: the paper's Figure 2 from the evaluated PPO snapshots of every RL
method, and its points as CSV."""

import pandas as pd

from roboscape.report.learning_curves import curve_points, learning_curves
from roboscape.utils.io import atomic_path
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    o = snakemake.output
    points = curve_points(pd.concat([pd.read_csv(path) for path in snakemake.input.curves], ignore_index=True))
    with atomic_path(o.csv) as tmp:
        points.to_csv(tmp, index=False, float_format="%.4f")
    learning_curves(points, o.png, o.pdf)
    log.info("%d points of %d methods", len(points), points["method"].nunique())
