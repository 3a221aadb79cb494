#!/usr/bin/env bash
# Translate a WMT test set with a model, score it, and rank it against the published systems
# with AutoRank (the WMT25 ranking method).
#
#   bash recipes/wmt25_eval.sh MODEL [TESTSET] [RUN_DIR]        (make wmt-eval MODEL=... runs it)
#
# TESTSET is either
#   * a WMT24 pair directory (default: ../shared/data/wmt24/en-ja): line-aligned sources, the
#     reference and the published systems' outputs. Every system, ours included, is scored with
#     the same metrics (BLEU and chrF++, plus COMET when COMET_MODEL is set) and ranked; or
#   * a WMT25 test-set JSONL (doc_id, src_lang, tgt_lang, domain, src_text: documents whose
#     paragraphs are separated by blank lines). The published WMT25 scores
#     (WMT25_SCORES, default ../shared/data/wmt25/automatic-scores) are per paragraph for
#     CometKiwi-XL, XCOMET-XL, MetricX-24 and two GEMBA judges; we compute the two COMET ones
#     (XCOMET_MODEL, KIWI_MODEL: model names when online or cached, or local checkpoints) on our
#     paragraphs and rank on those two metrics.
#
# Knobs (environment): BACKEND (auto: vLLM on a GPU when installed), TP (tensor-parallel GPUs),
# MBR (candidates sampled for MBR; 0 = greedy; In2x's submission used MBR), MAX_TOKENS (0 = auto),
# COMET_MODEL, XCOMET_MODEL, KIWI_MODEL, WMT25_SCORES, NAME (our system's name).
set -euo pipefail

MODEL=${1:?usage: wmt25_eval.sh MODEL [TESTSET] [RUN_DIR]}
HERE=$(cd "$(dirname "$0")" && pwd)
TESTSET=${2:-$HERE/../../shared/data/wmt24/en-ja}
NAME=${NAME:-$(basename "${MODEL%/}")}
RUN=${3:-runs/wmt-eval/$NAME}
BACKEND=${BACKEND:-auto}
TP=${TP:-1}
MBR=${MBR:-0}
MAX_TOKENS=${MAX_TOKENS:-0}
COMET_MODEL=${COMET_MODEL:-}
XCOMET_MODEL=${XCOMET_MODEL:-Unbabel/XCOMET-XL}
KIWI_MODEL=${KIWI_MODEL:-Unbabel/wmt23-cometkiwi-da-xl}
WMT25_SCORES=${WMT25_SCORES:-$HERE/../../shared/data/wmt25/automatic-scores}
IN2X=${IN2X:-in2x}

mkdir -p "$RUN"
TRANSLATE=("$IN2X" translate -m "$MODEL" --backend "$BACKEND" --tensor-parallel-size "$TP" --granularity document
           --max-tokens "$MAX_TOKENS" --resume)
[[ $MBR -gt 0 ]] && TRANSLATE+=(--mbr "$MBR")

if [[ -d $TESTSET ]]; then
  # WMT24: translate whole documents (paragraph fallback), write one line per source line.
  "${TRANSLATE[@]}" --wmt24 "$TESTSET" -o "$RUN/translations.jsonl" --segments-out "$RUN/$NAME.txt"
  METRICS=bleu,chrf
  [[ -n $COMET_MODEL ]] && METRICS="$METRICS,comet=$COMET_MODEL"
  "$IN2X" eval --wmt24 "$TESTSET" --hyp "$NAME=$RUN/$NAME.txt" -m "$METRICS" --by domain -o "$RUN/eval.json"
  "$IN2X" eval autorank "$RUN/eval.json" -o "$RUN/autorank.json"
else
  # WMT25: translate the documents, score every paragraph with the COMET metrics the organisers
  # published, and rank against every published system on those metrics. --allow-mixed: our scores
  # come from our COMET run, theirs from the organisers' (in2x cannot prove the two runs agree, so it
  # ranks them only when told to, and lists the differences in autorank.json "mixed").
  "${TRANSLATE[@]}" "$TESTSET" -o "$RUN/$NAME.jsonl"
  "$IN2X" eval "$RUN/$NAME.jsonl" --split-paragraphs -m "xcomet=$XCOMET_MODEL,cometkiwi=$KIWI_MODEL" --by domain -o "$RUN/eval.json"
  "$IN2X" eval autorank "$WMT25_SCORES" "$RUN/eval.json" --alias xcomet=XCOMET-XL --alias cometkiwi=CometKiwi-XL \
    -m XCOMET-XL,CometKiwi-XL --allow-mixed -o "$RUN/autorank.json"
fi
"$IN2X" -q plot "$RUN" --highlight "$NAME" > "$RUN/plots.jsonl"
echo "wmt-eval: $NAME scored and ranked: $RUN/eval.json, $RUN/autorank.json, pictures in $RUN/plots" >&2
