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

# The judge (step 2) learns its verdict format only from a warmed-up base: both scales warm up 300 steps.
if [[ $SCALE == small ]]; then
  WARM=300 CPT_STEPS=2 SFT_STEPS=4 GRPO_STEPS=2 G=2 MBR=2 NDOCS=2 TOTAL=12 SYN=3 MAXTOK=24 JUDGE_ROWS=40 JUDGE_STEPS=80 ANSWER_ROWS=3
  FUSE_TRAIN=8 FUSE_HELD=6 FUSE_STEPS=2
else
  WARM=300 CPT_STEPS=10 SFT_STEPS=40 GRPO_STEPS=6 G=4 MBR=4 NDOCS=12 TOTAL=60 SYN=12 MAXTOK=64 JUDGE_ROWS=40 JUDGE_STEPS=80 ANSWER_ROWS=9
  FUSE_TRAIN=32 FUSE_HELD=16 FUSE_STEPS=6
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
# "34 verdicts valid (easy 17, very_hard 11, ...), 26 invalid": the judge's difficulty verdicts in a grades file.
grades() {
  $PY -c 'import collections, json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
valid = collections.Counter(r["difficulty"] for r in rows if r.get("valid"))
levels = ", ".join(f"{k} {n}" for k, n in valid.most_common())
invalid = sum(not r.get("valid") for r in rows)
print(f"{sum(valid.values())} verdicts valid ({levels}), {invalid} invalid")' "$1"
}
# "critic accepted 6, flagged 2; ReReading keep 9": the judges' verdicts in synthesize outputs and rejects.
verdicts() {
  $PY -c 'import collections, json, sys
rows = [json.loads(l) for p in sys.argv[1:] for l in open(p, encoding="utf-8") if l.strip()]
judged = [r["critic"] for r in rows if r.get("critic") and "invalid" in r["critic"]]
flagged = sum(c["contradiction"] or c["hallucination"] or c["invalid"] for c in judged)
reread = collections.Counter(r["reread"]["verdict"] for r in rows if r.get("reread"))
print(f"critic accepted {len(judged) - flagged}, flagged {flagged}; ReReading", ", ".join(f"{k} {n}" for k, n in reread.most_common()) or "none")' "$@"
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
# translation chats for SFT, GRPO prompts with references and answers, and the judge's training
# chats (below). Each file gets a sidecar. The synthesis rules come first: the judge's chats quote them.
printf '%s\n' "Write tasks a native speaker would ask." "Keep each task self-contained and answerable." > "$RUN/data/rules.txt"
sidecar "$RUN/data/rules.txt" "synthesis rules"
$PY - "$DATA" "$RUN/data" "$NDOCS" "$JUDGE_ROWS" "$ANSWER_ROWS" <<'PYEOF'
import json
import sys
from pathlib import Path
from in2x_cli import provenance
from in2x_cli.io import JsonlWriter, iter_jsonl
src, out, ndocs, judge_rows, answer_rows = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
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
held_out = [{"id": f"h-{r['id']}", "src": r["en"], "ref": r["ja"], "src_lang": "en", "tgt_lang": "ja", "lang": "ja"} for r in par[160:168]]
held_out += [{"id": f"h-{r['id']}", "instruction": r["instruction"], "answer": r["answer"], "lang": r["lang"]} for r in rows("instructions") if r.get("answer")][24:28]
write("grpo_heldout.jsonl", held_out, "parallel", "instructions")  # GRPO's held-out prompts (disjoint from grpo_prompts)
write("documents.jsonl", rows("documents")[:ndocs], "documents")

# The judge's chats: each user turn is built by the code that sends it (in2x_cli.core.difficulty for
# sample-difficulty, in2x_cli.synth.pipeline for ReReading and the critic); each assistant turn is a
# verdict its validator accepts. Difficulty verdicts come from the labelled en/ja rows only (the zh
# labels stay hidden); every 6th row is held out of the ReReading and critic chats: those rows are
# the tasks the second synthesize call re-reads and criticises.
from in2x_cli.core.difficulty import judge_messages, parse_verdict
from in2x_cli.core.synthesize import parse_critic_verdict, parse_reread_verdict
from in2x_cli.langs import lang_name
from in2x_cli.prompts import synthesize_prompts
from in2x_cli.synth.pipeline import critic_prompt, reread_prompt, rules_to_check
prompts = synthesize_prompts()
rules_text = (out / "rules.txt").read_text(encoding="utf-8").strip()
rules = rules_to_check(prompts, rules_text)
labelled = rows("instructions")
def verdict_chat(id_, messages, verdict, parse):
    reply = json.dumps(verdict, ensure_ascii=False)
    parse(reply)  # the validator the command uses accepts it
    return {"id": id_, "messages": [*messages, {"role": "assistant", "content": reply}]}
judge = []
spread = lambda items, n: items[:: max(1, len(items) // n)][:n]  # n rows over every language and topic
for r in spread([r for r in labelled if r["lang"] != "zh"], 2 * judge_rows):
    l1, _, l2 = r["tag"].partition(" - ")
    judge.append(verdict_chat(f"j-grade-{r['id']}", judge_messages(r["instruction"]), {"tag_l1": l1, "tag_l2": l2 or l1,
                 "difficulty": r["difficulty"], "reason": f"{r['difficulty'].replace('_', ' ')} {l1.lower()} task"}, parse_verdict))
train = spread([r for i, r in enumerate(labelled) if i % 6 != 5], judge_rows)
held_out = [r for i, r in enumerate(labelled) if i % 6 == 5]
other_lang = {"en": "ja", "ja": "zh", "zh": "en"}
ok = {"contradiction": False, "hallucination": False, "invalid": False, "reason": "The response completes the task."}
swapped = {"contradiction": True, "hallucination": False, "invalid": True, "reason": "The response answers a different task."}
ok_task = {"contradiction": False, "hallucination": False, "invalid": False, "reason": "A clear, answerable task."}
cut_task = {"contradiction": False, "hallucination": False, "invalid": True, "reason": "The task is cut off."}
for i, r in enumerate(train):
    user = lambda text: [{"role": "user", "content": text}]
    wrong = train[(i + len(train) // 2) % len(train)]  # another row's response: a negative for the critic
    if i % 2:  # a task with a response, and the same task with another row's response
        judge.append(verdict_chat(f"j-critic-{r['id']}", user(critic_prompt(prompts, r["instruction"], r["response"], r["response"], rules)), ok, parse_critic_verdict))
        judge.append(verdict_chat(f"j-critic-swap-{r['id']}", user(critic_prompt(prompts, r["instruction"], r["response"], wrong["response"], rules)), swapped, parse_critic_verdict))
    else:  # a task alone (synthesize --no-answer), and the same task cut off half-way
        cut = r["instruction"][: len(r["instruction"]) // 2]
        judge.append(verdict_chat(f"j-critic-task-{r['id']}", user(critic_prompt(prompts, r["instruction"], r["response"], None, rules)), ok_task, parse_critic_verdict))
        judge.append(verdict_chat(f"j-critic-cut-{r['id']}", user(critic_prompt(prompts, cut, r["response"], None, rules)), cut_task, parse_critic_verdict))
    judge.append(verdict_chat(f"j-reread-{r['id']}", user(reread_prompt(prompts, r["instruction"], r["lang"], rules)),
                              {"verdict": "keep", "reason": "Clear, answerable and natural."}, parse_reread_verdict))
    if i % 2:  # a task offered for the wrong language set: ReReading rejects it
        lang = other_lang[r["lang"]]
        judge.append(verdict_chat(f"j-reread-lang-{r['id']}", user(reread_prompt(prompts, r["instruction"], lang, rules)),
                                  {"verdict": "reject", "reason": f"The task is not written in {lang_name(lang)}."}, parse_reread_verdict))
write("judge_chats.jsonl", judge, "instructions")
by_lang = [[r for r in held_out if r["lang"] == lang] for lang in ("zh", "en", "ja")]
tasks = [r for trio in zip(*by_lang) for r in trio][:answer_rows]  # zh, en, ja in turn
write("answer_tasks.jsonl", [{k: r[k] for k in ("id", "lang", "instruction")} for r in tasks], "instructions")
PYEOF
step "data: $(count "$RUN/data/pool.jsonl") pool rows, $(count "$RUN/data/knowledge.jsonl")+$(count "$RUN/data/creative.jsonl") CPT documents, $(count "$RUN/data/translation_chats.jsonl") translation chats, $(count "$RUN/data/grpo_prompts.jsonl") RL prompts"

# 1. cluster: Birch over hashing embeddings, merged to 12 clusters (paper: Birch over 40M).
q cluster "$RUN/data/pool.jsonl" --algorithm birch --k 12 --threshold 0.5 --cache-dir "$RUN/cache" -o "$RUN/clustered.jsonl"
q cluster "$RUN/data/pool.jsonl" --sweep-threshold 0.3,0.5,0.7 --cache-dir "$RUN/cache" -o "$RUN/cluster_sweep.jsonl"
step "cluster: $(count "$RUN/clustered.jsonl") rows in 12 Birch clusters; threshold sweep -> $RUN/cluster_sweep.jsonl"

# 2. The judge: the base model fine-tuned with in2x sft on the judge chats (data/judge_chats.jsonl:
#    difficulty, ReReading and critic requests as the commands send them, with valid verdicts).
q sft "$RUN/data/judge_chats.jsonl" -m "$RUN/base" --max-steps "$JUDGE_STEPS" --lr 5e-3 --max-length 1280 --batch-size 8 \
  --report-to none -o "$RUN/judge"
#    sample-difficulty: the judge grades the unlabelled zh rows (invalid verdicts are reported, never
#    guessed), then 3:3:3:1:0 over levels, 1:1:1 over zh/en/ja, 2 rounds.
q sample-difficulty "$RUN/clustered.jsonl" --judge-model "$RUN/judge" --judge-max-tokens 128 --total "$TOTAL" --rounds 2 \
  --report "$RUN/sample_report.json" --rejects "$RUN/grade_rejects.jsonl" -o "$RUN/selected.jsonl"
step "sample-difficulty: judge $RUN/judge ($JUDGE_STEPS SFT steps on $(count "$RUN/data/judge_chats.jsonl") judge chats): $(grades "$RUN/selected.jsonl.grades.jsonl"); $(count "$RUN/selected.jsonl") rows over 2 rounds (report: $RUN/sample_report.json)"

# 3. synthesize: Self-Instruct from the seed tasks under the rules (the base model writes and
#    re-reads, the judge criticises); the base model's tasks rarely survive the filters to reach the
#    critic, so the judge also re-reads and criticises held-out pool tasks (answer mode, --no-answer:
#    the tiny models' own answers loop until cut off, and a cut-off answer never reaches the critic).
q synthesize self-instruct "$DATA/seed_tasks.jsonl" -m "$RUN/base" --num "$SYN" --langs zh,en,ja --lang-ratio 1:1:1 \
  --rules "$RUN/data/rules.txt" --reread --critic-model "$RUN/judge" --max-tokens "$MAXTOK" -o "$RUN/synth.jsonl"
q synthesize answer "$RUN/data/answer_tasks.jsonl" -m "$RUN/judge" --no-answer --rules "$RUN/data/rules.txt" --reread \
  --critic-model "$RUN/judge" --judge-max-tokens 96 --answer-max-tokens 64 -o "$RUN/synth_answer.jsonl"
step "synthesize: self-instruct $(count "$RUN/synth.jsonl") accepted, $(count "$RUN/synth.rejects.jsonl") rejected ($(reasons "$RUN/synth.rejects.jsonl")); held-out tasks $(count "$RUN/synth_answer.jsonl") accepted, $(count "$RUN/synth_answer.rejects.jsonl") rejected ($(reasons "$RUN/synth_answer.rejects.jsonl")); $(verdicts "$RUN"/synth*.jsonl)"

# 4. cpt: the paper's three phases, shortened.
q cpt -m "$RUN/base" --data "$RUN/data/knowledge.jsonl:0.8" --data "$RUN/data/creative.jsonl:0.2" --seq-len 128 \
  --max-steps "$CPT_STEPS" --lr 1e-4 --lr-scheduler-type constant --batch-size 4 --report-to none -o "$RUN/cpt1"
q cpt -m "$RUN/cpt1" --data "$RUN/data/knowledge.jsonl" --min-tokens 64 --seq-len 256 --rope-theta 20000 \
  --max-steps "$CPT_STEPS" --lr 1e-4 --lr-scheduler-type constant --batch-size 2 --report-to none -o "$RUN/cpt2"
q cpt -m "$RUN/cpt2" --data "$RUN/data/knowledge.jsonl" --data "$RUN/data/creative.jsonl" --ppl-filter "$RUN/cpt2" --keep 0.5 \
  --seq-len 128 --max-steps "$CPT_STEPS" --lr 3e-5 --lr-scheduler-type linear --batch-size 4 --report-to none -o "$RUN/cpt3"
step "cpt: phase 1 (knowledge 0.8 + creative 0.2, constant LR) -> phase 2 (long docs, seq 256, RoPE theta 20000) -> phase 3 (lowest-perplexity half, LR 3e-5 linear decay): $RUN/cpt3"

# 5. sft: the sampled rows (round r in epoch r) plus synthesized data and translation chats.
$PY - "$RUN/selected.jsonl" "$RUN/synth.jsonl" "$RUN/synth_answer.jsonl" "$RUN/data/translation_chats.jsonl" "$RUN/data/sft.jsonl" <<'PYEOF'
import sys
from in2x_cli import provenance
from in2x_cli.io import JsonlWriter, iter_jsonl
*inputs, output = sys.argv[1:]
selected, synth, synth_answer, translation_chats = inputs
rows = [line.data for p in (selected, synth, synth_answer) for line in iter_jsonl(p, require_rows=False)]
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
  --temperature-start 1.0 --temperature-end 0.7 --eval-prompts "$RUN/data/grpo_heldout.jsonl" --report-to none -o "$RUN/grpo"
HELD_OUT=$($PY -c 'import json, sys
ev = [r for r in map(json.loads, open(sys.argv[1], encoding="utf-8")) if "eval_reward" in r]
R, L = "eval_reward", "eval_completions/mean_length"
f = lambda r: "reward %.3f, length %.1f tokens" % (r[R], r[L])
print("held-out %s at step %d -> %s at step %d" % (f(ev[0]), ev[0]["step"], f(ev[-1]), ev[-1]["step"]))' "$RUN/grpo/metrics.jsonl")
step "grpo: $GRPO_STEPS TIC-GRPO updates, $G rollouts per prompt, rewards chrF + math_exact + language_match; $HELD_OUT -> $RUN/grpo"

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

# 8b. fusion (beyond the paper: the WMT25 winner's candidate fusion). sft writes candidates (greedy +
# samples) for unseen en→ja sentences; grpo trains a fuser on fusion rows (source + numbered candidates,
# reward chrF of the fused output vs the reference); on held-out sentences `translate --fuse` fuses the
# candidates, and the table compares fusion with MBR and the single candidates, whatever it shows.
F=$RUN/fusion
mkdir -p "$F"
$PY - "$DATA" "$F" "$FUSE_TRAIN" "$FUSE_HELD" <<'PYEOF'
import json, sys
from in2x_cli import provenance
from in2x_cli.io import JsonlWriter
data, out, n_train, n_held = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
par = [json.loads(l) for l in open(f"{data}/parallel.jsonl", encoding="utf-8") if l.strip()]
for name, rows in (("sentences_train", par[160:160 + n_train]), ("sentences_heldout", par[200:200 + n_held])):
    meta = provenance.collect(command=f"recipes/demo.sh: fusion {name} (parallel rows, unseen by sft and grpo)", inputs=[f"{data}/parallel.jsonl"])
    with JsonlWriter(f"{out}/{name}.jsonl", meta=meta) as w:
        for r in rows:
            w.write({"id": f"f-{r['id']}", "src": r["en"], "ref": r["ja"], "src_lang": "en", "tgt_lang": "ja"})
PYEOF
q translate "$F/sentences_train.jsonl" -m "$RUN/sft" --granularity paragraph --mbr "$MBR" --mbr-output all --max-tokens 24 -o "$F/candidates_train.jsonl"
$PY - "$F" <<'PYEOF'
import sys
from in2x_cli import provenance
from in2x_cli.io import JsonlWriter, iter_jsonl
f = sys.argv[1]
meta = provenance.collect(command="recipes/demo.sh: grpo fusion rows (src + sft's candidates + ref)", inputs=[f"{f}/candidates_train.jsonl"])
with JsonlWriter(f"{f}/fusion_rows.jsonl", meta=meta) as w:
    for line in iter_jsonl(f"{f}/candidates_train.jsonl"):
        r = line.data
        cands = [c["text"] for u in r["mbr"]["units"] for c in u["candidates"]] or [r["hyp"]]
        w.write({"id": r["id"], "src": r["src"], "ref": r["ref"], "candidates": cands, "src_lang": "en", "tgt_lang": "ja"})
PYEOF
q grpo "$F/fusion_rows.jsonl" -m "$RUN/sft" --reward fusion_chrf -G "$G" --rollout-batch 4 --minibatch 2 --batch-size "$G" \
  --max-steps "$FUSE_STEPS" --max-completion-tokens 24 --lr 1e-4 --report-to none -o "$F/fuser"
q translate "$F/sentences_heldout.jsonl" -m "$RUN/sft" --granularity paragraph --mbr "$MBR" --mbr-output all --fuse "$F/fuser" \
  --max-tokens 24 -o "$F/fused_heldout.jsonl"
FUSION_SUMMARY=$($PY - "$F" <<'PYEOF'
import json, sys
from sacrebleu.metrics import CHRF
from in2x_cli import provenance
from in2x_cli.io import iter_jsonl, write_json
f = sys.argv[1]
rows = [line.data for line in iter_jsonl(f"{f}/fused_heldout.jsonl")]
chrf = CHRF()
refs = [r["ref"] for r in rows]
systems = {"fusion (grpo-trained tiny fuser)": [r["hyp"] for r in rows]}
mbr, greedy, oracle = [], [], []
for r in rows:
    (unit,) = r["mbr"]["units"]  # --mbr-output all: the candidates and the MBR choice
    texts = [c["text"] for c in unit["candidates"]]
    mbr.append(texts[unit["selected"]])
    greedy.append(next(c["text"] for c in unit["candidates"] if c["sample"] == -1))
    oracle.append(max(texts, key=lambda t: chrf.sentence_score(t, [r["ref"]]).score))
systems.update({"MBR (chrF utility)": mbr, "greedy candidate": greedy, "best single candidate (oracle, per row)": oracle})
table = {name: round(chrf.corpus_score(h, [refs]).score, 2) for name, h in systems.items()}
used = [u["used"] for r in rows for u in r["fusion"]["units"]]
doc = {"rows": len(rows), "metric": "corpus chrF vs reference", "chrf": table, "fusion_used": {k: used.count(k) for k in sorted(set(used))},
       "provenance": provenance.collect(command="recipes/demo.sh: fusion vs MBR vs single candidates on held-out rows", inputs=[f"{f}/fused_heldout.jsonl"])}
write_json(f"{f}/compare.json", doc)
print(f"fusion on {len(rows)} held-out en-ja sentences, corpus chrF vs reference:", file=sys.stderr)
for name, score in table.items():
    print(f"  {name:<42} {score:6.2f}", file=sys.stderr)
winner = max(table, key=table.get)
print(f"fusion {table['fusion (grpo-trained tiny fuser)']:.2f} vs MBR {table['MBR (chrF utility)']:.2f} vs best single {table['best single candidate (oracle, per row)']:.2f} (highest: {winner.split(' (')[0]})")
PYEOF
)
step "fusion: $FUSE_STEPS grpo steps on $FUSE_TRAIN fusion rows -> $F/fuser; held-out: $FUSION_SUMMARY ($F/compare.json)"

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
