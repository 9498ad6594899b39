#!/usr/bin/env bash
# The nano student's distillation chain on one GPU, from a training pack alone (docs/nano_distillation.md):
#   1. an untrained nano encoder under the teacher's prompt encoder and mask decoder (`distill_encoder.py
#      --student-only`);
#   2. decoupled distillation on the pack's images, the teacher running on each (flipped) batch: `pretrain.py
#      --variant encoder-only --distill-teacher TEACHER --distill-only`;
#   3. the task stage, everything training: ultrasam-lite-us v3's prompts (points 60 %, mixed sampling, boxes
#      single-mask, temperature-2 mixing) with one corrective click, every candidate's IoU regressed
#      (`--iou-all-masks`), the single-mask token trained on single clicks (`--single-mask-clicks`), and the embedding
#      held to the teacher's (`--distill-teacher`, weight DISTILL_WEIGHT), and every decoder pass's answers too
#      (`--distill-outputs`, weight OUTPUT_WEIGHT; 0 turns it off).
#
#   scripts/distill_nano.sh PACK TEACHER OUT_DIR MSE_MINUTES TASK_MINUTES
#
# PACK: `python scripts/make_training_pack.py --data BUILD --init TEACHER --codec webp --quality 85 --out PACK`.
# The student is OUT_DIR/nano-task. Each stage stops at its step count or its minutes, whichever comes first.
set -euo pipefail
pack=$1 teacher=$2 out=$3 mse_minutes=$4 task_minutes=$5
mse_batch=${MSE_BATCH:-64} task_batch=${TASK_BATCH:-16} distill_weight=${DISTILL_WEIGHT:-1}
output_weight=${OUTPUT_WEIGHT:-2}
mse_steps=${MSE_STEPS:-100000} task_steps=${TASK_STEPS:-100000}  # small only for a dry run on a CPU
mkdir -p "$out"
precision=$(python -c "import torch; print('bf16' if torch.cuda.is_available() else 'no')")
common=(--pack "$pack" --mixing-temperature 2 --distill-teacher "$teacher" --mixed-precision "$precision"
    --milestones 1000000 --no-progress --log-with csv --log-every 20 --seed 0)

python scripts/distill_encoder.py --teacher "$teacher" --student-only --out "$out/nano-init" > "$out/init.log"
python scripts/pretrain.py "${common[@]}" --init "$out/nano-init" --variant encoder-only --distill-only \
    --batch-size "$mse_batch" --learning-rate 2e-3 --weight-decay 0.01 --max-grad-norm 1 --warmup-steps 50 \
    --max-steps "$mse_steps" --max-minutes "$mse_minutes" --output-dir "$out/nano-mse" > "$out/mse.log" 2>&1
python scripts/pretrain.py "${common[@]}" --init "$out/nano-mse" --variant full --distill-weight "$distill_weight" \
    --distill-outputs "$output_weight" \
    --batch-size "$task_batch" --learning-rate 1e-4 --warmup-steps 20 --clicks 1 --max-instances 8 \
    --point-probability 0.6 --point-sampling mixed --no-multimask-boxes \
    --iou-all-masks --single-mask-clicks --max-steps "$task_steps" --max-minutes "$task_minutes" \
    --output-dir "$out/nano-task" > "$out/task.log" 2>&1
echo "done: $out/nano-task ($(grep -c . "$out/nano-task/logs/ultrasam/metrics.csv" 2>/dev/null || echo 0) metric rows)"
