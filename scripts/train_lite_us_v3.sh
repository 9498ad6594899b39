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
batch=${BATCH:-16} bench_steps=${BENCH_STEPS:-20}  # smaller only for a dry run on a CPU
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
bf16=$(python -c "import torch; print('--bf16' if torch.cuda.is_available() else '')")
python scripts/benchmark_training.py --pipeline --pack "$pack" --init "$init" --batch-size "$batch" --clicks 2 --max-instances 8 $bf16 \
    --steps "$bench_steps" --warmup "$((bench_steps / 4 + 1))" --out "$out/training_pipeline.md" > "$out/benchmark.log" 2>&1
rate=$(grep '^| end to end, pack' "$out/training_pipeline.md" | awk -F'|' '{print $3}')
steps=$(python -c "print(max(10, int(float('$rate') / 4 * 60 * $minutes / $batch)))")
echo "end-to-end ${rate} images/s alone -> ${steps} steps per run"

precision=$([ -n "$bf16" ] && echo bf16 || echo no)
common=(--init "$init" --pack "$pack" --variant full --batch-size "$batch" --mixed-precision "$precision" --learning-rate 1e-4
    --warmup-steps "$((steps < 1000 ? steps / 10 : 100))" --max-steps "$steps" --milestones "$((steps * 3 / 4))" "$((steps * 9 / 10))"
    --clicks 2 --max-instances 8 --point-probability 0.6 --point-sampling mixed --no-multimask-boxes --iou-all-masks
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
