"""Rule `scenes`: write the scene catalogue, the ID/OOD split and the selected scenes."""

from roboscape.sim.catalogue import TaskParams, build_catalogue
from roboscape.utils.io import write_json
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    p = snakemake.params
    catalogue = build_catalogue(
        p.split_seed,
        list(p.tasks),
        p.n_ind,
        p.n_ood,
        TaskParams(**p.task_params),
        n_ood_objects=p.n_ood_objects,
        n_ood_pairs=p.n_ood_pairs,
        multitask=list(p.multitask),
    )
    write_json(snakemake.output[0], catalogue.to_json())
    log.info(
        "%d scenes (%d OOD); selected per task: %s",
        len(catalogue.scenes),
        sum(s.split == "ood" for s in catalogue.scenes),
        {t: len(v) for t, v in catalogue.selected.items()},
    )
