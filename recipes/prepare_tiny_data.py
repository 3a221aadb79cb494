"""Lay out the bundled tiny corpus (in2x_cli/data/tiny) as the inputs recipes/in2x.sh expects.

    python recipes/prepare_tiny_data.py DATA_DIR

Writes pool.jsonl (instructions + translation tasks with references), seed_tasks.jsonl, rules.txt,
cpt_{knowledge,creative,long,hq}.jsonl, calib_{ja,zh}.jsonl and test.jsonl. The recipe's paper
scale comes from pointing DATA at real files with the same names and fields.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from in2x_cli.tiny import load_corpus

EN_JA = "次の英語を日本語に翻訳してください。\n\n{src}"
JA_ZH = "请将以下日语翻译成中文。\n\n{src}"


def write(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    pool = [dict(r) for r in load_corpus("instructions")]
    for r in load_corpus("parallel"):
        pool.append({"id": f"{r['id']}-enja", "lang": "ja", "instruction": EN_JA.format(src=r["en"]), "response": r["ja"], "src": r["en"], "ref": r["ja"],
                     "src_lang": "en", "tgt_lang": "ja", "tag": "Translation - English to Japanese", "difficulty": "medium"})
        pool.append({"id": f"{r['id']}-jazh", "lang": "zh", "instruction": JA_ZH.format(src=r["ja"]), "response": r["zh"], "src": r["ja"], "ref": r["zh"],
                     "src_lang": "ja", "tgt_lang": "zh", "tag": "Translation - Japanese to Chinese", "difficulty": "medium"})
    write(out / "pool.jsonl", pool)
    write(out / "seed_tasks.jsonl", load_corpus("seed_tasks"))
    (out / "rules.txt").write_text("Write tasks a native speaker would ask.\nKeep each task self-contained and answerable.\n", encoding="utf-8")
    pre = load_corpus("pretrain")
    write(out / "cpt_knowledge.jsonl", [r for r in pre if r.get("kind") != "creative"])
    write(out / "cpt_creative.jsonl", [r for r in pre if r.get("kind") == "creative"])
    docs = load_corpus("documents")
    write(out / "cpt_long.jsonl", [{"id": d["doc_id"], "lang": d["tgt_lang"], "text": d["ref_text"]} for d in docs] + pre)
    write(out / "cpt_hq.jsonl", pre)
    par = load_corpus("parallel")
    write(out / "calib_ja.jsonl", [{"messages": [{"role": "user", "content": EN_JA.format(src=r["en"])}, {"role": "assistant", "content": r["ja"]}]} for r in par[:32]])
    write(out / "calib_zh.jsonl", [{"messages": [{"role": "user", "content": JA_ZH.format(src=r["ja"])}, {"role": "assistant", "content": r["zh"]}]} for r in par[:32]])
    write(out / "test.jsonl", docs)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: prepare_tiny_data.py DATA_DIR")
    main(Path(sys.argv[1]))
