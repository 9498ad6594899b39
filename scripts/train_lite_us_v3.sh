#!/usr/bin/env bash
# ultrasam-lite-us v3 and its leave-one-anatomy-out (LOAO) runs: four trainings side by side on one GPU, same recipe,
# each stopping after MINUTES (how the shipped v3 was trained; docs/ultrasam_lite_us_v3.md has the numbers).
#
#   scripts/train_lite_us_v3.sh PACK INIT_DIR OUT_DIR MINUTES
#
# PACK: `python scripts/make_training_pack.py --data BUILD --init INIT_DIR --codec webp --quality Q --out PACK` over
# every built dataset's train split. INIT_DIR: LiteMedSAM converted (`ultrasam convert --from litemedsam ...`).
# Left out: thyroid (tg3k), fetal head (hc18, fh-ps-aop), nerves (usgra, ubpd) — whole datasets, so that nothing
# of the left-out anatomy is seen.
set -euo pipefail
pack=$1 init=$2 out=$3 minutes=$4
mkdir -p "$out"
python - "$pack" > "$out/pack.txt" <<'EOF'
import sys
from ultrasam_hf.training.pack import read_pack_summary
summary = read_pack_summary(sys.argv[1])
print(" ".join(summary["datasets"]))
EOF
read -r -a all_datasets < "$out/pack.txt"
without() { local skip=" $* " d; for d in "${all_datasets[@]}"; do [[ $skip == *" $d "* ]] || printf '%s ' "$d"; done; }

# Throughput first (the issue's pipeline benchmark), then the step budget of one of four concurrent runs.
python scripts/benchmark_training.py --pipeline --pack "$pack" --init "$init" --batch-size 32 --clicks 2 --bf16 \
    --steps 20 --warmup 5 --out "$out/training_pipeline_gpu.md" > "$out/benchmark.log" 2>&1
rate=$(grep '^| end to end, pack' "$out/training_pipeline_gpu.md" | awk -F'|' '{print $3}')
steps=$(python -c "print(max(100, int(float('$rate') / 4 * 60 * $minutes / 32)))")
echo "end-to-end ${rate} images/s alone -> ${steps} steps per run"

common=(--init "$init" --pack "$pack" --variant full --batch-size 32 --mixed-precision bf16 --learning-rate 1e-4
    --warmup-steps 100 --max-steps "$steps" --milestones "$((steps * 3 / 4))" "$((steps * 9 / 10))"
    --clicks 2 --point-probability 0.6 --point-sampling mixed --no-multimask-boxes --iou-all-masks
    --mixing-temperature 2 --max-minutes "$minutes" --no-progress --log-with csv --log-every 50 --seed 0)
declare -A runs=(
    [v3]="${all_datasets[*]}"
    [loao-thyroid]="$(without tg3k)"
    [loao-fetal-head]="$(without hc18 fh-ps-aop)"
    [loao-nerve]="$(without usgra ubpd)"
)
for name in "${!runs[@]}"; do
    # shellcheck disable=SC2086
    python scripts/pretrain.py "${common[@]}" --datasets ${runs[$name]} --output-dir "runs/$name" > "$out/$name.log" 2>&1 &
done
wait
echo "done: ${!runs[*]}"
