#!/usr/bin/env bash
# The In2x recipe (arXiv 2508.14472, 1st among unconstrained systems for Japanese at WMT25) on GPUs.
#
#   bash recipes/in2x.sh [MODEL] [RUN_DIR]          (make reproduce MODEL=... runs it)
#
# MODEL   the base model: a Qwen2.5 instruct model by default (local directory or hub id).
# DATA    (environment) a directory with the recipe's inputs; by default the bundled tiny corpus is
#         laid out there (a smoke run that exercises every stage with your model). For the paper's
#         scale point DATA at your own files with the same names:
#           pool.jsonl          instruction pool (the paper's 40M): instruction, lang, [tag, difficulty, answer, ref]
#           seed_tasks.jsonl    Self-Instruct seed tasks
#           cpt_knowledge.jsonl cpt_creative.jsonl cpt_long.jsonl cpt_hq.jsonl   CPT text (text, lang)
#           calib_ja.jsonl calib_zh.jsonl   calibration chats for OBIM merging (one per language expert)
#           test.jsonl          WMT25-style test documents (doc_id, src_lang, tgt_lang, domain, src_text)
#
# One node: LAUNCH_CONFIG=fsdp2 (default) or zero3, NPROC = GPUs on the node (default: all visible).
# Multi-node (shared filesystem): run this script on every node with NUM_MACHINES, MACHINE_RANK and
# MAIN_PROCESS_IP set; rank 0 does the data and inference steps, every rank joins the training
# steps (accelerate launches them), and ranks > 0 wait for rank 0's files before each one.
set -euo pipefail

MODEL=${1:-Qwen/Qwen2.5-7B-Instruct}
RUN=${2:-runs/in2x}
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${DATA:-$RUN/data}
IN2X=${IN2X:-in2x}
PY=${PYTHON:-python}

# ---------------------------------------------------------------- paper hyperparameters
# Data curation (paper: 40M instructions -> Birch clusters -> LLM difficulty -> 1.5M SFT + 500k RL).
SFT_ROWS=${SFT_ROWS:-1500000}            # SFT samples, drawn in SFT_EPOCHS rounds (one per epoch)
RL_ROWS=${RL_ROWS:-500000}               # RL prompts, disjoint from SFT
DIFFICULTY_RATIO=3:3:3:1:0               # Very Difficult : Difficult : Moderate : Simple : Very Simple
LANG_RATIO=zh=1,en=1,ja=1                # 1:1:1 zh/en/ja
BIRCH_THRESHOLD=${BIRCH_THRESHOLD:-0.5}  # paper tunes it by tag recapture + smoothness (see cluster_sweep.jsonl)
CLUSTERS=${CLUSTERS:-20000}              # paper silent
SYNTH_ROWS=${SYNTH_ROWS:-30000}          # Self-Instruct rows added to SFT (paper: part of 2M synthesized; size of this share not given)
# Continued pretraining, three phases (paper: 8,192 -> ~32k context; phase 3 LR 3e-5 linear decay).
CPT1_TOKENS=${CPT1_TOKENS:-2B}  CPT1_LR=${CPT1_LR:-1e-5}  CPT1_SEQ=${CPT1_SEQ:-8192}     # budgets and phase-1/2 LR: paper silent
CPT2_TOKENS=${CPT2_TOKENS:-500M} CPT2_LR=${CPT2_LR:-1e-5} CPT2_SEQ=${CPT2_SEQ:-32768} CPT2_ROPE_THETA=${CPT2_ROPE_THETA:-1000000}
CPT2_MIN_TOKENS=${CPT2_MIN_TOKENS:-$CPT1_SEQ}   # phase 2 trains on documents longer than the phase-1 context
CPT3_TOKENS=${CPT3_TOKENS:-200M} CPT3_LR=3e-5 CPT3_KEEP=${CPT3_KEEP:-0.5}
CPT_BATCH=${CPT_BATCH:-1} CPT_ACCUM=${CPT_ACCUM:-8}
# SFT (paper: 2 epochs, one sampling round each, LR 2e-5 cosine, a language "temperature").
SFT_EPOCHS=2 SFT_LR=2e-5 SFT_MAX_LEN=${SFT_MAX_LEN:-8192} LANG_TEMPERATURE=${LANG_TEMPERATURE:-1.5}  # temperature value: paper silent
SFT_BATCH=${SFT_BATCH:-1} SFT_ACCUM=${SFT_ACCUM:-16}
# RL: TIC-GRPO (paper: batch 128, minibatch 32, 16 rollouts, one epoch, entropy 0.01, temperature decay).
GRPO_BATCH=${GRPO_BATCH:-128} GRPO_MINIBATCH=${GRPO_MINIBATCH:-32} GRPO_G=${GRPO_G:-16} GRPO_ENTROPY=0.01
GRPO_LR=${GRPO_LR:-1e-6} GRPO_TEMP_START=${GRPO_TEMP_START:-1.0} GRPO_TEMP_END=${GRPO_TEMP_END:-0.7}
GRPO_MAX_TOKENS=${GRPO_MAX_TOKENS:-2048} GRPO_LENGTH_PENALTY=${GRPO_LENGTH_PENALTY:-1536:2048} GRPO_REWARD_CLIP=${GRPO_REWARD_CLIP:-1.0}
GRPO_PER_DEVICE=${GRPO_PER_DEVICE:-16}
# Merge (paper: OBIM over experts with "orthogonal" language skills) and inference (MBR + ensemble).
OBIM_DENSITY=${OBIM_DENSITY:-0.2}
MBR=${MBR:-16}
# Budgets for a quick look (0 = run the full budgets above).
MAX_STEPS=${MAX_STEPS:-0}

# ---------------------------------------------------------------- launch
BACKEND=${BACKEND:-auto}
if [[ -z ${NPROC:-} ]]; then
  NPROC=$($PY -c 'import torch; print(max(1, torch.cuda.device_count()))')
fi
NUM_MACHINES=${NUM_MACHINES:-1} MACHINE_RANK=${MACHINE_RANK:-0} MAIN_PROCESS_IP=${MAIN_PROCESS_IP:-127.0.0.1}
if [[ ${LAUNCHER:-} == none ]] || ! $PY -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  LAUNCH=(--launcher none)                     # CPU smoke runs: train in-process
else
  LAUNCH=(--launcher accelerate --launch-config "${LAUNCH_CONFIG:-fsdp2}" --num-processes "$((NPROC * NUM_MACHINES))"
          --num-machines "$NUM_MACHINES" --machine-rank "$MACHINE_RANK" --main-process-ip "$MAIN_PROCESS_IP")
fi
steps() { [[ $MAX_STEPS -gt 0 ]] && echo "--max-steps $MAX_STEPS"; }
lead() { [[ $MACHINE_RANK -eq 0 ]]; }                                 # data and inference run on rank 0
wait_for() { while [[ ! -e $1 ]]; do sleep 30; done; }             # other ranks wait on the shared filesystem
say() { printf '[in2x %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

mkdir -p "$RUN"

# ---------------------------------------------------------------- 0. inputs
if lead && [[ ! -e $DATA/pool.jsonl ]]; then
  mkdir -p "$DATA"
  $PY "$HERE/prepare_tiny_data.py" "$DATA"
  say "no DATA given: laid out the bundled tiny corpus in $DATA (a smoke run; set DATA for the paper's scale)"
fi

if lead; then
  # ---------------------------------------------------------------- 1. data curation (paper: SFT data)
  # Birch clustering of the instruction pool; the sweep reports tag recapture and smoothness per
  # threshold, the two signals the paper tuned the threshold with.
  "$IN2X" cluster "$DATA/pool.jsonl" --sweep-threshold 0.3,0.5,0.7 > "$RUN/cluster_sweep.jsonl"
  "$IN2X" cluster "$DATA/pool.jsonl" --algorithm two-level --threshold "$BIRCH_THRESHOLD" --k "$CLUSTERS" -o "$RUN/clustered.jsonl"
  # Difficulty by an LLM judge (tags + five levels) for rows without labels, pass@k where answers exist.
  "$IN2X" sample-difficulty "$RUN/clustered.jsonl" --grade-only --judge-model "$MODEL" --solve-model "$MODEL" --k 16 \
    --backend "$BACKEND" --rejects "$RUN/grade_rejects.jsonl" -o "$RUN/graded.jsonl" --resume
  # 3:3:3:1:0 over levels, 1:1:1 over zh/en/ja, round-robin over clusters and tags, one round per epoch.
  "$IN2X" sample-difficulty "$RUN/graded.jsonl" --ratio "$DIFFICULTY_RATIO" --lang-ratio "$LANG_RATIO" \
    --total "$((SFT_ROWS / SFT_EPOCHS))" --rounds "$SFT_EPOCHS" --report "$RUN/sft_sample_report.json" -o "$RUN/sft_selected.jsonl"
  # RL prompts: the same stratification over the rows SFT did not take.
  $PY -c 'import json, sys
taken = {json.dumps(json.loads(l).get("id")) for l in open(sys.argv[1], encoding="utf-8")}
for l in open(sys.argv[2], encoding="utf-8"):
    if json.dumps(json.loads(l).get("id")) not in taken: sys.stdout.write(l)' "$RUN/sft_selected.jsonl" "$RUN/graded.jsonl" > "$RUN/rl_pool.jsonl"
  "$IN2X" sample-difficulty "$RUN/rl_pool.jsonl" --ratio "$DIFFICULTY_RATIO" --lang-ratio "$LANG_RATIO" --total "$RL_ROWS" \
    --report "$RUN/rl_sample_report.json" -o "$RUN/rl_prompts.jsonl"
  say "curation: $(wc -l < "$RUN/sft_selected.jsonl") SFT rows in $SFT_EPOCHS rounds, $(wc -l < "$RUN/rl_prompts.jsonl") RL prompts"

  # ---------------------------------------------------------------- 2. synthesis (paper: Self-Instruct, Magpie, critic, ReReading)
  "$IN2X" synthesize self-instruct "$DATA/seed_tasks.jsonl" -m "$MODEL" --backend "$BACKEND" --num "$SYNTH_ROWS" \
    --langs zh,en,ja --lang-ratio 1:1:1 --reread --critic-model "$MODEL" -o "$RUN/synth_self_instruct.jsonl" --resume
  "$IN2X" synthesize magpie -m "$MODEL" --backend "$BACKEND" --num "$((SYNTH_ROWS / 2))" --langs zh,en,ja \
    --reread --critic-model "$MODEL" -o "$RUN/synth_magpie.jsonl" --resume
  # Localised Japanese exam-style rewrites of the English tasks (the paper's cultural/creative transfer).
  $PY -c 'import json, sys
for l in open(sys.argv[1], encoding="utf-8"):
    if json.loads(l).get("lang") == "en": sys.stdout.write(l)' "$RUN/synth_self_instruct.jsonl" > "$RUN/synth_en.jsonl"
  : > "$RUN/synth_rewrite_ja.jsonl"
  if [[ -s $RUN/synth_en.jsonl ]]; then
    "$IN2X" synthesize rewrite "$RUN/synth_en.jsonl" -m "$MODEL" --backend "$BACKEND" --langs ja --style exam \
      --critic-model "$MODEL" -o "$RUN/synth_rewrite_ja.jsonl" --resume
  fi
  # Every synthesized row joins SFT round 0 or 1 (alternating), next to the sampled rows.
  cat "$RUN/synth_self_instruct.jsonl" "$RUN/synth_magpie.jsonl" "$RUN/synth_rewrite_ja.jsonl" \
    | $PY -c 'import json, sys
for i, l in enumerate(sys.stdin):
    r = json.loads(l); r["round"] = i % 2; print(json.dumps(r, ensure_ascii=False))' > "$RUN/synth_rounds.jsonl"
  say "synthesis: $(wc -l < "$RUN/synth_rounds.jsonl") rows accepted by ReReading and the critic"
  # SFT inputs: the sampled rounds plus synthesis, and the Japanese share for the Japanese expert.
  cat "$RUN/sft_selected.jsonl" "$RUN/synth_rounds.jsonl" > "$RUN/sft_data.jsonl"
  $PY -c 'import json, sys
for l in open(sys.argv[1], encoding="utf-8"):
    if json.loads(l).get("lang") == "ja": sys.stdout.write(l)' "$RUN/sft_data.jsonl" > "$RUN/sft_data_ja.jsonl"
  touch "$RUN/.data-ready"
fi

# ---------------------------------------------------------------- 3. continued pretraining, three phases
lead || wait_for "$RUN/.data-ready"
"$IN2X" cpt -m "$MODEL" --data "$DATA/cpt_knowledge.jsonl:0.8" --data "$DATA/cpt_creative.jsonl:0.2" --seq-len "$CPT1_SEQ" \
  --max-tokens "$CPT1_TOKENS" --lr "$CPT1_LR" --lr-scheduler-type constant --batch-size "$CPT_BATCH" --grad-accum "$CPT_ACCUM" \
  --gradient-checkpointing $(steps) "${LAUNCH[@]}" -o "$RUN/cpt1" --resume
"$IN2X" cpt -m "$RUN/cpt1" --data "$DATA/cpt_long.jsonl" --min-tokens "$CPT2_MIN_TOKENS" --seq-len "$CPT2_SEQ" --rope-theta "$CPT2_ROPE_THETA" \
  --max-tokens "$CPT2_TOKENS" --lr "$CPT2_LR" --lr-scheduler-type constant --batch-size "$CPT_BATCH" --grad-accum "$CPT_ACCUM" \
  --gradient-checkpointing $(steps) "${LAUNCH[@]}" -o "$RUN/cpt2" --resume
# Phase 3: perplexity filter under the phase-2 model (rank 0 writes the kept set), then fast annealing.
if lead; then
  "$IN2X" cpt -m "$RUN/cpt2" --data "$DATA/cpt_hq.jsonl" --ppl-filter "$RUN/cpt2" --keep "$CPT3_KEEP" --ppl-only -o "$RUN/cpt3"
  touch "$RUN/.ppl-ready"
fi
wait_for "$RUN/.ppl-ready"
"$IN2X" cpt -m "$RUN/cpt2" --data "$DATA/cpt_hq.jsonl" --ppl-filter "$RUN/cpt2" --keep "$CPT3_KEEP" --seq-len "$CPT2_SEQ" \
  --max-tokens "$CPT3_TOKENS" --lr "$CPT3_LR" --lr-scheduler-type linear --batch-size "$CPT_BATCH" --grad-accum "$CPT_ACCUM" \
  --gradient-checkpointing $(steps) "${LAUNCH[@]}" -o "$RUN/cpt3" --resume
say "cpt: three phases -> $RUN/cpt3"

# ---------------------------------------------------------------- 4. SFT (two epochs, one sampling round each)
"$IN2X" sft "$RUN/sft_data.jsonl" -m "$RUN/cpt3" --rounds --lr "$SFT_LR" --lr-scheduler-type cosine --max-length "$SFT_MAX_LEN" \
  --language-temperature "$LANG_TEMPERATURE" --batch-size "$SFT_BATCH" --grad-accum "$SFT_ACCUM" --gradient-checkpointing \
  $(steps) "${LAUNCH[@]}" -o "$RUN/sft" --resume
# A Japanese expert for the merge (the paper fuses models with "orthogonal" language skills): the
# same recipe on the Japanese conversations only.
"$IN2X" sft "$RUN/sft_data_ja.jsonl" -m "$RUN/cpt3" --rounds --lr "$SFT_LR" --lr-scheduler-type cosine --max-length "$SFT_MAX_LEN" \
  --batch-size "$SFT_BATCH" --grad-accum "$SFT_ACCUM" --gradient-checkpointing $(steps) "${LAUNCH[@]}" -o "$RUN/sft_ja" --resume
say "sft: $RUN/sft (all languages) and $RUN/sft_ja (Japanese expert)"

# ---------------------------------------------------------------- 5. RL: Trajectory-Corrected GRPO
# Rule rewards for math/STEM/logic (exact final answers, format), chrF for translation prompts, the
# generative judge (fixed principles + per-prompt guidelines) for creative tasks; a reward applies
# only to the rows it can score.
"$IN2X" grpo "$RUN/rl_prompts.jsonl" -m "$RUN/sft" --reward math_exact --reward format:0.2 --reward translation_chrf \
  --reward generative_judge --judge-model "$MODEL" --judge-backend "$BACKEND" \
  -G "$GRPO_G" --rollout-batch "$GRPO_BATCH" --minibatch "$GRPO_MINIBATCH" --batch-size "$GRPO_PER_DEVICE" --epochs 1 \
  --ratio-level trajectory --entropy-coef "$GRPO_ENTROPY" --lr "$GRPO_LR" --temperature-start "$GRPO_TEMP_START" \
  --temperature-end "$GRPO_TEMP_END" --max-completion-tokens "$GRPO_MAX_TOKENS" --length-penalty "$GRPO_LENGTH_PENALTY" \
  --reward-clip-high "$GRPO_REWARD_CLIP" --gradient-checkpointing $(steps) "${LAUNCH[@]}" -o "$RUN/grpo" --resume
say "grpo: $RUN/grpo"

if lead; then
  # -------------------------------------------------------------- 6. checkpoint fusion: OBIM
  # Saliency from each expert's calibration activations (the RL model on Chinese, the Japanese expert
# on Japanese); the RL model claims contested positions first.
  "$IN2X" merge --method obim --base "$RUN/cpt3" -m "$RUN/grpo" -m "$RUN/sft_ja" -d "$OBIM_DENSITY" \
    --calibration "$DATA/calib_zh.jsonl" --calibration "$DATA/calib_ja.jsonl" -o "$RUN/in2x" --overwrite
  say "merge: OBIM of grpo + sft_ja -> $RUN/in2x"

  # -------------------------------------------------------------- 7. WMT25-style translation: MBR over an ensemble
  "$IN2X" translate "$DATA/test.jsonl" -m "$RUN/in2x" -m "$RUN/grpo" --backend "$BACKEND" --granularity document \
    --mbr "$MBR" --mbr-utility chrf -o "$RUN/test.hyp.jsonl" --resume
  # With references (ref_text) the test set is scored here; WMT25's blind test set is scored with the
  # organisers' COMET metrics and ranked against the published systems by recipes/wmt25_eval.sh.
  if $PY -c 'import json, sys; sys.exit(0 if all("ref_text" in json.loads(l) or "ref" in json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()) else 1)' "$DATA/test.jsonl"; then
    "$IN2X" eval "$RUN/test.hyp.jsonl" --split-paragraphs -m bleu,chrf --by domain -o "$RUN/test.eval.json"
  fi
  "$IN2X" -q plot "$RUN" > "$RUN/plots.jsonl"
  say "done: model $RUN/in2x, translations $RUN/test.hyp.jsonl, pictures $RUN/plots (rank it: bash recipes/wmt25_eval.sh $RUN/in2x TESTSET)"
fi
