"""Two CPU processes (gloo) share one run directory: only the main process prepares it, the other
waits and gets its answer or its error (issue 15, item 11)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str, log_dir: str, scenario: str) -> None:
    import shutil

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world))
    from in2x_cli.errors import UserError
    from in2x_cli.train import rundir

    calls: list[str] = []
    real_rmtree, real_mkdir = shutil.rmtree, Path.mkdir

    def rmtree(path, *a, **k):
        calls.append(f"rmtree {Path(path).name}")
        return real_rmtree(path, *a, **k)

    def mkdir(self, *a, **k):
        calls.append(f"mkdir {self.name}")
        return real_mkdir(self, *a, **k)

    rundir.shutil.rmtree = rmtree
    Path.mkdir = mkdir
    try:
        ckpt = rundir.prepare_output_dir(out, resume=scenario == "resume", overwrite=scenario == "overwrite")
        result = {"ok": None if ckpt is None else Path(ckpt).name, "empty": not any(Path(out).iterdir())}
    except UserError as exc:
        result = {"error": exc.message}
    finally:
        Path.mkdir = real_mkdir
    Path(log_dir, f"rank{rank}.json").write_text(json.dumps({"calls": calls, **result}))
    import torch.distributed as dist

    dist.destroy_process_group()


def _run(tmp_path: Path, scenario: str) -> list[dict]:
    import torch.multiprocessing as mp

    out, logs = tmp_path / "run", tmp_path / f"logs-{scenario}"
    logs.mkdir()
    mp.start_processes(_worker, args=(2, _free_port(), str(out), str(logs), scenario), nprocs=2, join=True, start_method="fork")
    return [json.loads((logs / f"rank{r}.json").read_text()) for r in range(2)]


def test_only_the_main_process_prepares_the_run_directory(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("previous run")
    main, other = _run(tmp_path, "overwrite")
    assert main["calls"] == ["rmtree run", "mkdir run"] and main["ok"] is None and main["empty"]
    assert other["calls"] == [] and other["ok"] is None and other["empty"]  # waited, then saw it ready

    (out / "checkpoint-4").mkdir()
    (out / "checkpoint-4" / "trainer_state.json").write_text("{}")
    (out / "checkpoint-4" / "model.safetensors").write_bytes(b"x")
    (out / "checkpoint-6").mkdir()  # killed while saving: removed by the main process only
    main, other = _run(tmp_path, "resume")
    assert main["ok"] == other["ok"] == "checkpoint-4"
    assert main["calls"] == ["rmtree checkpoint-6", "rmtree .final.partial"] and other["calls"] == []

    main, other = _run(tmp_path, "fresh")  # not empty, neither --resume nor --overwrite: both ranks fail
    assert "not empty" in main["error"] and other["error"] == main["error"]


def _once_worker(rank: int, world: int, port: int, log_dir: str, fail: bool) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world))
    from in2x_cli.errors import UserError
    from in2x_cli.train.rundir import on_main_process

    ran: list[int] = []

    def work() -> dict:
        ran.append(rank)
        if fail:
            raise UserError("bad scores", "ppl.jsonl")
        return {"kept": [3, 1], "by": rank}

    try:
        result = {"value": on_main_process(work)}
    except UserError as exc:
        result = {"error": f"{exc.where}: {exc.message}"}
    Path(log_dir, f"rank{rank}.json").write_text(json.dumps({"ran": ran, **result}))
    import torch.distributed as dist

    dist.destroy_process_group()


def test_work_such_as_the_perplexity_filter_runs_once_and_every_rank_gets_its_result(tmp_path):
    import torch.multiprocessing as mp

    for fail in (False, True):
        logs = tmp_path / f"logs-{fail}"
        logs.mkdir()
        mp.start_processes(_once_worker, args=(2, _free_port(), str(logs), fail), nprocs=2, join=True, start_method="fork")
        main, other = (json.loads((logs / f"rank{r}.json").read_text()) for r in range(2))
        assert main["ran"] == [0] and other["ran"] == []
        if fail:
            assert main["error"] == other["error"] == "ppl.jsonl: bad scores"
        else:
            assert main["value"] == other["value"] == {"kept": [3, 1], "by": 0}
