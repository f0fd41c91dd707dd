#!/usr/bin/env bash
# Submits the shards as a job array and the merge with a dependency on all of them.
#   CHECKPOINT=runs/edm-mnist/checkpoint.safetensors N=50000 examples/slurm/submit.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
array=$(sbatch --parsable --export=ALL "$here/eval_shards.sbatch")
array=${array%%;*}
merge=$(sbatch --parsable --export=ALL --dependency="afterok:$array" "$here/merge.sbatch")
echo "submitted shards as job $array and the merge as job $merge"
