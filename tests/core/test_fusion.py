"""core.fusion: the fusion prompt and the cleaning of a fusion model's reply."""

from in2x_cli.core.fusion import (
    DEFAULT_FUSE_TEMPLATE,
    clean_fused,
    distinct,
    number_candidates,
    render_fuse_prompt,
    validate_fuse_template,
)


def test_default_prompt_numbers_candidates_and_asks_for_only_the_translation():
    text = render_fuse_prompt(DEFAULT_FUSE_TEMPLATE, "Hello.", ["こんにちは。", "やあ。"], "en", "ja")
    assert text == (
        "Below is a English source text and 2 candidate translations of it into Japanese. Write one refined Japanese "
        "translation that keeps the best of the candidates and corrects their errors (meaning, terminology, fluency). "
        "Only output the refined translation.\n\nSource:\nHello.\n\nCandidate 1:\nこんにちは。\n\nCandidate 2:\nやあ。"
    )


def test_structure_sentence_for_documents_and_one_pass_filling():
    text = render_fuse_prompt("{structure}|{src}|{n}|{candidates}", "A {n}\n\nB", ["x {src}"], "en", "zh", paragraphs=2)
    assert text.startswith("The source has 2 paragraphs separated by blank lines; keep the same 2 paragraphs")
    assert text.endswith("|A {n}\n\nB|1|Candidate 1:\nx {src}")  # placeholders inside texts stay as written


def test_template_checks_distinct_and_numbering():
    assert validate_fuse_template("{src}") == "a fusion template must contain {candidates}"
    assert validate_fuse_template("no placeholders") == "a fusion template must contain {src} and {candidates}"
    assert validate_fuse_template(DEFAULT_FUSE_TEMPLATE) is None
    assert distinct(["a", " a ", "b", "", "a"]) == ["a", "b"]
    assert number_candidates(["p\n\nq", "r"]) == "Candidate 1:\np\n\nq\n\nCandidate 2:\nr"


def test_clean_fused_drops_labels_and_chatter():
    assert clean_fused("Refined translation:\n猫です。")[0] == "猫です。"  # the translate stage's preamble rule
    assert clean_fused("**Final translation:** 猫です。") == ("猫です。", ["fusion_label"])
    assert clean_fused("Candidate 2: 猫です。") == ("猫です。", ["fusion_label"])
    text, fired = clean_fused("Here is the translation:\n\n「猫です。」")
    assert text == "猫です。" and "preamble" in fired
    # a source that itself starts with such a label keeps it
    assert clean_fused("Final translation: done", src="Final translation: done")[0] == "Final translation: done"


def test_docs_show_the_default_fusion_prompt_and_every_mbr_method():
    from pathlib import Path

    from in2x_cli.core.mbr_methods import MBR_METHODS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "translate.md").read_text(encoding="utf-8")
    head, tail = DEFAULT_FUSE_TEMPLATE.split("\n\n", 1)
    assert "    " + head in doc and "    Source:\n    {src}\n\n    {candidates}" in doc and tail == "Source:\n{src}\n\n{candidates}"
    for name in MBR_METHODS:
        assert f"| `{name}`" in doc, name
    for option in ("--fuse MODEL", "--fuse-prompt-file", "--mbr-method", "--mbr-alpha", "--mbr-first-refs", "--qe-model"):
        assert option in doc, option
