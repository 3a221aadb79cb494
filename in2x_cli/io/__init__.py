"""The only code that opens data files. See jsonl.py (rows), text.py (line files) and
checkpoint.py (safetensors / HF model directories)."""

from in2x_cli.io.jsonl import (
    JsonlWriter,
    Line,
    check_output_path,
    iter_jsonl,
    open_input,
    read_jsonl,
    write_json,
)
from in2x_cli.io.text import iter_text_lines, read_text_lines, write_text

__all__ = [
    "JsonlWriter",
    "Line",
    "check_output_path",
    "iter_jsonl",
    "iter_text_lines",
    "open_input",
    "read_jsonl",
    "read_text_lines",
    "write_json",
    "write_text",
]
