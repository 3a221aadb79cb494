"""The rows of a sampling pool as compact per-row arrays (one pass; nothing else is kept), with
every row checked: a bad field is an error naming the file and line.

Per row: its language (``lang``, normalised; detected from the text when absent), its level
(``difficulty``, any spelling ``core.sampling.normalize_difficulty`` accepts; -1 = to be graded),
its ``cluster`` and ``tag`` (interned to ints), and for a row to grade the hash of its grading
key. ``core.sampling.select`` draws from these arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from in2x_cli.core.difficulty import Request, grade_key
from in2x_cli.core.sampling import DIFFICULTY_HELP, LEVELS, normalize_difficulty
from in2x_cli.errors import InputError, UserError
from in2x_cli.langs import detect_lang, normalize_lang
from in2x_cli.records import row_text

if TYPE_CHECKING:
    import numpy as np

NO_CLUSTER = -(2**62)  # rows without a cluster form one group


class Pool:
    """Compact per-row arrays of a sampling pool, filled row by row (nothing else is kept).

    A row's language is its ``lang`` (normalised; detected from the text when absent); its
    level is its ``difficulty`` (any accepted spelling); a row without ``difficulty`` gets a
    grading request — pass@k when ``can_solve`` and the row has an ``answer``, else the judge
    when ``can_judge`` — and otherwise is an error. Rows in languages outside ``langs`` are
    counted and left out.
    """

    def __init__(self, langs: Sequence[str] | None, *, field: str | None, can_judge: bool, can_solve: bool) -> None:
        from array import array

        self.accept_all = langs is None  # grade-only: every language is kept
        self.langs = [] if langs is None else list(langs)
        self.field = field
        self.can_judge = can_judge
        self.can_solve = can_solve
        self.lang_idx = array("h")
        self.level_idx = array("b")  # -1: to be graded, -2: grading failed
        self.cluster = array("q")
        self.tag = array("q")
        self.keyhash = array("q")  # grading key (60-bit) for rows to grade, else 0
        self.tag_names: list[str] = []
        self._tag_ids: dict[str, int] = {}
        self.excluded_lang: dict[str, int] = {}
        self.lang_detected = 0

    def __len__(self) -> int:
        return len(self.lang_idx)

    def tag_id(self, tag: str) -> int:
        if tag not in self._tag_ids:
            self._tag_ids[tag] = len(self.tag_names)
            self.tag_names.append(tag)
        return self._tag_ids[tag]

    def request_for(self, data: dict[str, Any], where: str) -> Request | None:
        """The grading request for a row without ``difficulty`` (``None`` when it has one)."""
        if data.get("difficulty") is not None:
            return None
        text = row_text(data, self.field, where)
        answer = data.get("answer")
        if self.can_solve and answer is not None and not isinstance(answer, (dict, list, bool)):
            return Request(grade_key("pass@k", text, answer), text, "pass@k", answer)
        if self.can_judge:
            return Request(grade_key("judge", text), text, "judge")
        hint = "--judge-model" if self.can_solve else "--judge-model or --solve-model"
        raise InputError(f"row has no 'difficulty' and nothing can grade it: pass {hint}", where)

    def add(self, data: dict[str, Any], where: str) -> Request | None:
        """Record one row; returns its grading request, if it needs one."""
        raw_level = data.get("difficulty")
        level = -1
        if raw_level is not None:
            name = normalize_difficulty(raw_level)
            if name is None:
                raise InputError(f"field 'difficulty' is {raw_level!r}; expected {DIFFICULTY_HELP}", where)
            level = LEVELS.index(name)
        lang_raw = data.get("lang")
        if lang_raw is None:
            lang = detect_lang(row_text(data, self.field, where))
            self.lang_detected += 1
        else:
            try:
                lang = normalize_lang(lang_raw) if isinstance(lang_raw, str) else None
            except UserError:
                lang = None
            if lang is None:
                raise InputError(f"field 'lang' is {lang_raw!r}; expected a language code such as zh, en, ja", where)
        cluster = data.get("cluster")
        if cluster is not None and (not isinstance(cluster, int) or isinstance(cluster, bool)):
            raise InputError(f"field 'cluster' must be an integer, got {type(cluster).__name__}", where)
        if cluster is not None and not -(2**63) <= cluster < 2**63:  # kept in an int64 array
            raise InputError(f"field 'cluster' is {cluster}, out of the 64-bit integer range", where)
        tag = data.get("tag")
        if tag is not None and not isinstance(tag, str):
            raise InputError(f"field 'tag' must be a string, got {type(tag).__name__}", where)
        request = self.request_for(data, where)
        if self.accept_all and lang not in self.langs:
            self.langs.append(lang)
        if lang in self.langs:
            self.lang_idx.append(self.langs.index(lang))
        else:
            self.lang_idx.append(-1)
            self.excluded_lang[lang] = self.excluded_lang.get(lang, 0) + 1
        self.level_idx.append(level)
        self.cluster.append(NO_CLUSTER if cluster is None else cluster)
        self.tag.append(-1 if tag is None else self.tag_id(tag))
        # rows outside the sampled languages are never graded: no request for them
        if lang not in self.langs:
            request = None
        self.keyhash.append(0 if request is None else key_hash(request.key))
        return request

    def arrays(self) -> dict[str, np.ndarray]:
        import numpy as np

        return {
            "lang_idx": np.frombuffer(self.lang_idx, dtype=np.int16).astype(np.int64),
            "level_idx": np.frombuffer(self.level_idx, dtype=np.int8).astype(np.int64),
            "cluster": np.frombuffer(self.cluster, dtype=np.int64).copy(),
            "tag": np.frombuffer(self.tag, dtype=np.int64).copy(),
        }

    def apply_grades(self, grades: Mapping[int, dict[str, Any]]) -> list[int]:
        """Fill levels (and missing tags) from grade records keyed by ``key_hash``; returns the
        rows whose grading failed (level -2). Rows whose key has no record stay ungraded (-1)."""
        failed = []
        for i, kh in enumerate(self.keyhash):
            if kh == 0 or self.level_idx[i] != -1:
                continue
            rec = grades.get(kh)
            if rec is None:
                continue
            if rec.get("valid"):
                self.level_idx[i] = LEVELS.index(rec["difficulty"])
                if self.tag[i] == -1 and rec.get("tag"):
                    self.tag[i] = self.tag_id(rec["tag"])
            else:
                self.level_idx[i] = -2
                failed.append(i)
        return failed


def key_hash(key: str) -> int:
    """A 60-bit integer for a hex grading key (non-zero)."""
    return int(key[:15], 16) or 1
