"""``python -m snakemake`` for the cluster test, less the Slurm executor plugin's fixed pause.

The plugin (2.x) sleeps 5 s before every ``sbatch`` it calls, whatever the cluster. On a real cluster
that is lost in the queue's own wait; on the test's one-node cluster it delays every job of the
tiny DAG's chain. Only the plugin's module sees the change: Snakemake's own waits, the plugin's
sbatch call, its resources and its status checks are untouched.
"""

import time
from types import SimpleNamespace

import snakemake_executor_plugin_slurm as plugin
from snakemake.cli import main

plugin.time = SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("_")})
plugin.time.sleep = lambda seconds: None

if __name__ == "__main__":
    main()
