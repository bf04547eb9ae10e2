"""Rule `policy_instructions`: the sentence embedding of every catalogue scene's instruction."""

from roboscape.models.text_encoder import encode_sentences
from roboscape.utils.io import read_json
from roboscape.utils.logs import job_log

with job_log(snakemake.log[0]) as log:
    scenes = [s for s in read_json(snakemake.input.scenes)["scenes"] if s["task"] in snakemake.params.tasks]
    unique = encode_sentences([s["instruction"] for s in scenes], snakemake.output[0], backend=snakemake.params.backend)
    log.info("%d instructions of %d scenes embedded with %s", len(unique), len(scenes), snakemake.params.backend)
