from in2x_cli.wmt import canary_lines, group_documents, open_wmt24, split_paragraphs, wmt24_segments


def test_wmt24_en_ja_importer_drops_canary_and_groups_documents(shared_data):
    ws = open_wmt24(shared_data / "wmt24" / "en-ja")
    segs = wmt24_segments(ws)
    assert len(segs) == 997  # 998 lines minus the canary
    assert all("CANARY" not in s["src"] for s in segs)
    assert segs[0]["line"] == 2 and segs[0]["src_lang"] == "en" and segs[0]["tgt_lang"] == "ja"
    assert canary_lines(ws) == {0}
    docs = group_documents(segs)
    assert len(docs) == 170
    assert sum(len(d["segment_ids"]) for d in docs) == 997
    first = docs[0]
    assert len(split_paragraphs(first["src"])) == len(first["segment_ids"]) == len(split_paragraphs(first["ref"]))
    assert len(ws.systems()) == 23


def test_split_paragraphs():
    assert split_paragraphs("a\n\nb\n\n\n\nc\n") == ["a", "b", "c"]
    assert split_paragraphs("one line\nsame para") == ["one line\nsame para"]
