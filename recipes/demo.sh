#!/usr/bin/env bash
# The whole In2x recipe on the bundled tiny model and corpus: CPU, offline, a few minutes.
#
#   bash recipes/demo.sh [RUN_DIR]          (make demo runs it with RUN_DIR=runs/demo)
#
# Every stage does its real work on tiny inputs; the tiny model's translations are not the point.
# Each step prints one line; every artefact lands in RUN_DIR with its provenance; the last step
# prints the AutoRank table and draws the pictures (RUN_DIR/plots).
# DEMO_SCALE=small shrinks every budget (the test suite runs the demo that way).
set -euo pipefail

RUN=${1:-runs/demo}
SCALE=${DEMO_SCALE:-full}
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TOKENIZERS_PARALLELISM=false IN2X_NO_PROGRESS=${IN2X_NO_PROGRESS:-1}
# A 64-wide model gains nothing from several intra-op threads and loses a lot when they contend.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore::FutureWarning}
IN2X=${IN2X:-in2x}
PY=${PYTHON:-python}

if [[ $SCALE == small ]]; then
  WARM=40 CPT_STEPS=2 SFT_STEPS=4 GRPO_STEPS=2 G=2 MBR=2 NDOCS=2 TOTAL=12 SYN=3 MAXTOK=24
else
  WARM=300 CPT_STEPS=10 SFT_STEPS=40 GRPO_STEPS=6 G=4 MBR=4 NDOCS=12 TOTAL=60 SYN=12 MAXTOK=64
fi

rm -rf "$RUN"
mkdir -p "$RUN/data"
DATA=$($PY -c 'from in2x_cli.tiny import corpus_dir; print(corpus_dir())')
T0=$SECONDS
step() { printf '[demo %3ds] %s\n' "$((SECONDS - T0))" "$*"; }
count() { if [[ -f $1 ]]; then grep -c . "$1" || true; else echo 0; fi; }
# "truncated 32, wrong_language 4": the reject reasons of a rejects file, most frequent first.
reasons() {
  [[ -s $1 ]] || { echo none; return; }
  $PY -c 'import collections, json, sys
c = collections.Counter(json.loads(l)["reason"] for l in open(sys.argv[1], encoding="utf-8") if l.strip())
print(", ".join(f"{k} {n}" for k, n in c.most_common()) or "none")' "$1"
}
q() { "$IN2X" -q "$@"; }
# Provenance for a file this script makes itself (not through an in2x command): the same
# FILE.meta.json an in2x output gets (tool version, command, input sha256s, row count).
sidecar() {  # sidecar FILE WHAT INPUT...
  $PY - "$@" <<'PYEOF'
import sys
from in2x_cli import provenance
from in2x_cli.io import write_json
out, what, inputs = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(out, encoding="utf-8") as fh:
    rows = sum(1 for line in fh if line.strip())
write_json(f"{out}.meta.json", provenance.collect(command=f"recipes/demo.sh: {what}", inputs=inputs, extra={"output": {"path": out, "rows": rows}}))
PYEOF
}

# 0. A base model: the tiny Qwen2 chat model, warmed up on the corpus (stands in for Qwen2.5).
q tiny-model "$RUN/base" --train-steps "$WARM"
step "tiny-model: $RUN/base (Qwen2-shaped, ${WARM} warm-up steps on the bundled en/ja/zh corpus)"

# Data preparation (plain Python on the bundled corpus): a pool where the Chinese rows lost their
# difficulty labels (the judge grades them), CPT sources split into knowledge and creative,
# translation chats for SFT, and GRPO prompts with references and answers. Each file gets a sidecar.
$PY - "$DATA" "$RUN/data" "$NDOCS" <<'PYEOF'
import sys
from pathlib import Path
from in2x_cli import provenance
from in2x_cli.io import JsonlWriter, iter_jsonl
src, out, ndocs = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
rows = lambda name: [line.data for line in iter_jsonl(src / f"{name}.jsonl")]
def write(name, items, *sources):  # sources: the corpus files the rows came from
    meta = provenance.collect(command="recipes/demo.sh: data preparation", config={"file": name, "ndocs": ndocs},
                              inputs=[src / f"{s}.jsonl" for s in sources])
    with JsonlWriter(out / name, meta=meta) as w:
        w.write_many(items)
pool = []
for r in rows("instructions"):
    if r["lang"] == "zh":
        r = {k: v for k, v in r.items() if k != "difficulty"}
    pool.append(r)
write("pool.jsonl", pool, "instructions")
pre = rows("pretrain")
write("knowledge.jsonl", [r for r in pre if r.get("kind") != "creative"], "pretrain")
write("creative.jsonl", [r for r in pre if r.get("kind") == "creative"], "pretrain")
par = rows("parallel")
chats = []
for r in par[:120]:
    chats.append({"id": f"tr-enja-{r['id']}", "lang": "ja", "messages": [
        {"role": "user", "content": f"次の英語を日本語に翻訳してください。\n\n{r['en']}"}, {"role": "assistant", "content": r["ja"]}]})
    chats.append({"id": f"tr-jazh-{r['id']}", "lang": "zh", "messages": [
        {"role": "user", "content": f"请将以下日语翻译成中文。\n\n{r['ja']}"}, {"role": "assistant", "content": r["zh"]}]})
write("translation_chats.jsonl", chats, "parallel")
grpo = [{"id": f"g-{r['id']}", "src": r["en"], "ref": r["ja"], "src_lang": "en", "tgt_lang": "ja", "lang": "ja"} for r in par[120:160]]
grpo += [{"id": f"g-{r['id']}", "instruction": r["instruction"], "answer": r["answer"], "lang": r["lang"]} for r in rows("instructions") if r.get("answer")][:24]
write("grpo_prompts.jsonl", grpo, "parallel", "instructions")
write("documents.jsonl", rows("documents")[:ndocs], "documents")
PYEOF
step "data: $(count "$RUN/data/pool.jsonl") pool rows, $(count "$RUN/data/knowledge.jsonl")+$(count "$RUN/data/creative.jsonl") CPT documents, $(count "$RUN/data/translation_chats.jsonl") translation chats, $(count "$RUN/data/grpo_prompts.jsonl") RL prompts"

# 1. cluster: Birch over hashing embeddings, merged to 12 clusters (paper: Birch over 40M).
q cluster "$RUN/data/pool.jsonl" --algorithm birch --k 12 --threshold 0.5 --cache-dir "$RUN/cache" -o "$RUN/clustered.jsonl"
q cluster "$RUN/data/pool.jsonl" --sweep-threshold 0.3,0.5,0.7 --cache-dir "$RUN/cache" -o "$RUN/cluster_sweep.jsonl"
step "cluster: $(count "$RUN/clustered.jsonl") rows in 12 Birch clusters; threshold sweep -> $RUN/cluster_sweep.jsonl"

# 2. sample-difficulty: the tiny model judges the unlabelled rows (its verdicts are invalid JSON,
#    which are reported, never guessed), then 3:3:3:1:0 over levels, 1:1:1 over zh/en/ja, 2 rounds.
q sample-difficulty "$RUN/clustered.jsonl" --judge-model "$RUN/base" --judge-max-tokens 32 --total "$TOTAL" --rounds 2 \
  --report "$RUN/sample_report.json" --rejects "$RUN/grade_rejects.jsonl" -o "$RUN/selected.jsonl"
step "sample-difficulty: $(count "$RUN/selected.jsonl") rows over 2 rounds; $(count "$RUN/grade_rejects.jsonl") judge verdicts rejected (report: $RUN/sample_report.json)"

# 3. synthesize: Self-Instruct from the seed tasks under the rules, with ReReading and a critic.
printf '%s\n' "Write tasks a native speaker would ask." "Keep each task self-contained and answerable." > "$RUN/data/rules.txt"
sidecar "$RUN/data/rules.txt" "synthesis rules"
q synthesize self-instruct "$DATA/seed_tasks.jsonl" -m "$RUN/base" --num "$SYN" --langs zh,en,ja --lang-ratio 1:1:1 \
  --rules "$RUN/data/rules.txt" --reread --critic-model "$RUN/base" --max-tokens "$MAXTOK" -o "$RUN/synth.jsonl"
step "synthesize: $(count "$RUN/synth.jsonl") accepted, $(count "$RUN/synth.rejects.jsonl") rejected ($(reasons "$RUN/synth.rejects.jsonl"); rows in $RUN/synth.rejects.jsonl)"

# 4. cpt: the paper's three phases, shortened.
q cpt -m "$RUN/base" --data "$RUN/data/knowledge.jsonl:0.8" --data "$RUN/data/creative.jsonl:0.2" --seq-len 128 \
  --max-steps "$CPT_STEPS" --lr 1e-4 --lr-schedule constant --batch-size 4 --report-to none -o "$RUN/cpt1"
q cpt -m "$RUN/cpt1" --data "$RUN/data/knowledge.jsonl" --min-tokens 64 --seq-len 256 --rope-theta 20000 \
  --max-steps "$CPT_STEPS" --lr 1e-4 --lr-schedule constant --batch-size 2 --report-to none -o "$RUN/cpt2"
q cpt -m "$RUN/cpt2" --data "$RUN/data/knowledge.jsonl" --data "$RUN/data/creative.jsonl" --ppl-filter "$RUN/cpt2" --keep 0.5 \
  --seq-len 128 --max-steps "$CPT_STEPS" --lr 3e-5 --lr-schedule linear --batch-size 4 --report-to none -o "$RUN/cpt3"
step "cpt: phase 1 (knowledge 0.8 + creative 0.2, constant LR) -> phase 2 (long docs, seq 256, RoPE theta 20000) -> phase 3 (lowest-perplexity half, LR 3e-5 linear decay): $RUN/cpt3"

# 5. sft: the sampled rows (round r in epoch r) plus synthesized data and translation chats.
$PY - "$RUN/selected.jsonl" "$RUN/synth.jsonl" "$RUN/data/translation_chats.jsonl" "$RUN/data/sft.jsonl" <<'PYEOF'
import sys
from in2x_cli import provenance
from in2x_cli.io import JsonlWriter, iter_jsonl
*inputs, output = sys.argv[1:]
selected, synth, translation_chats = inputs
rows = [line.data for p in (selected, synth) for line in iter_jsonl(p, require_rows=False)]
rows = [r for r in rows if r.get("response") or r.get("messages")]
chats = [line.data for line in iter_jsonl(translation_chats)]
for i, c in enumerate(chats):
    c["round"] = i % 2   # translation chats are split over both rounds (0 and 1, as sample-difficulty numbers them)
meta = provenance.collect(command="recipes/demo.sh: SFT data (answered rows + synthesized + translation chats)", inputs=inputs)
with JsonlWriter(output, meta=meta) as w:
    for r in rows + chats:
        r.setdefault("round", 0)
        w.write(r)
PYEOF
q sft "$RUN/data/sft.jsonl" -m "$RUN/cpt3" --rounds --max-steps "$SFT_STEPS" --lr 1e-3 --max-length 256 --batch-size 8 --report-to none -o "$RUN/sft"
q sft "$RUN/data/sft.jsonl" -m "$RUN/cpt3" --rounds --max-steps "$SFT_STEPS" --lr 1e-3 --max-length 256 --batch-size 8 \
  --language-temperature 2.0 --seed 1 --report-to none -o "$RUN/sft_t2"
step "sft: $(count "$RUN/data/sft.jsonl") conversations, assistant-only loss, packed, 2 rounds -> $RUN/sft and a language-temperature-2 variant $RUN/sft_t2"

# 6. grpo: Trajectory-Corrected GRPO with rule rewards (chrF vs the reference, exact answers, language).
q grpo "$RUN/data/grpo_prompts.jsonl" -m "$RUN/sft" --reward translation_chrf --reward math_exact --reward language_match:0.5 \
  -G "$G" --rollout-batch 4 --minibatch 2 --batch-size "$G" --max-steps "$GRPO_STEPS" --max-completion-tokens 24 --lr 1e-4 \
  --temperature-start 1.0 --temperature-end 0.7 --report-to none -o "$RUN/grpo"
step "grpo: $GRPO_STEPS TIC-GRPO updates, $G rollouts per prompt, rewards chrF + math_exact + language_match -> $RUN/grpo"

# 7. merge: fuse the two fine-tuned variants over the CPT base, with TIES and with OBIM.
q merge --method ties --base "$RUN/cpt3" -m "$RUN/grpo" -m "$RUN/sft_t2" -w 0.5 -d 0.5 -o "$RUN/merged_ties"
head -40 "$RUN/data/translation_chats.jsonl" > "$RUN/data/calibration.jsonl"
sidecar "$RUN/data/calibration.jsonl" "OBIM calibration (first 40 translation chats)" "$RUN/data/translation_chats.jsonl"
q merge --method obim --base "$RUN/cpt3" -m "$RUN/grpo" -m "$RUN/sft_t2" -d 0.3 --calibration "$RUN/data/calibration.jsonl" -o "$RUN/merged_obim"
step "merge: TIES (density 0.5) and OBIM (saliency from calibration activations, top 30%, mutually exclusive) of grpo + sft_t2 -> $RUN/merged_ties, $RUN/merged_obim"

# 8. translate: WMT25-style documents, paragraph fallback, MBR over greedy + samples (chrF utility).
SYSTEMS="base sft grpo merged_ties merged_obim"
for sys in $SYSTEMS; do
  q translate "$RUN/data/documents.jsonl" -m "$RUN/$sys" --granularity document --mbr "$MBR" --max-tokens "$MAXTOK" \
    -o "$RUN/translate_$sys.jsonl"
done
# One file for eval: every system's rows, tagged with the system (provenance: the five inputs).
# shellcheck disable=SC2086
$PY - "$RUN" $SYSTEMS <<'PYEOF'
import sys
from in2x_cli import provenance
from in2x_cli.io import JsonlWriter, iter_jsonl
run, systems = sys.argv[1], sys.argv[2:]
inputs = [f"{run}/translate_{s}.jsonl" for s in systems]
meta = provenance.collect(command="recipes/demo.sh: translations (each system's rows, tagged, for eval)", config={"systems": systems}, inputs=inputs)
with JsonlWriter(f"{run}/translations.jsonl", meta=meta) as out:
    for system, path in zip(systems, inputs):
        for line in iter_jsonl(path):
            r = dict(line.data, system=system)
            r["ref"] = r.pop("ref_text", r.get("ref"))
            out.write(r)
PYEOF
step "translate: $NDOCS documents x 5 systems, document mode + MBR over $((MBR + 1)) candidates -> $RUN/translations.jsonl"

# 9. eval: BLEU / chrF++ (and COMET with a tiny local checkpoint when the COMET environment exists).
METRICS=bleu,chrf
if $PY -c 'from in2x_cli.comet import comet_available; raise SystemExit(0 if comet_available() else 1)'; then
  $PY - "$RUN/tiny_comet" <<'PYEOF'
import sys
from in2x_cli import provenance
from in2x_cli.comet import build_tiny_checkpoint, comet_python
from in2x_cli.io.checkpoint import write_provenance
path = build_tiny_checkpoint(sys.argv[1])
write_provenance(sys.argv[1], provenance.collect(command="recipes/demo.sh: tiny COMET checkpoint (in2x_cli.comet.build_tiny_checkpoint)",
                                                 config={"checkpoint": str(path), "comet_python": comet_python()}, seed=None))
PYEOF
  METRICS="$METRICS,comet=$RUN/tiny_comet"
fi
q eval "$RUN/translations.jsonl" -m "$METRICS" --by domain --autorank -o "$RUN/eval.json"
step "eval: $METRICS per system and domain -> $RUN/eval.json"

# 10. AutoRank over the demo's systems (the WMT25 ranking method), then the pictures.
"$IN2X" eval autorank "$RUN/eval.json" -o "$RUN/autorank.json"   # prints the final table
q plot "$RUN" > "$RUN/plots.jsonl"   # each PNG carries its own provenance; the index gets a sidecar
sidecar "$RUN/plots.jsonl" "in2x plot index" "$RUN"/plots/*.png
step "plot: $(count "$RUN/plots.jsonl") pictures in $RUN/plots; done in $((SECONDS - T0)) s"
