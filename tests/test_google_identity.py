"""The development Google service account, made on first use."""

from __future__ import annotations

import multiprocessing

from wallet.config import Settings
from wallet.google.identity import load_identity


def _first_request(instance: str, start, answers) -> None:
    start.wait()
    try:
        answers.put(load_identity(Settings.load(overrides={"INSTANCE_PATH": instance})).private_key_id)
    except Exception as exc:  # the test reads it: a worker that could not read the key
        answers.put(f"failed: {exc}")


def test_workers_making_the_development_key_at_once_all_read_the_same_whole_key(tmp_path) -> None:
    # gunicorn's workers meet their first requests together: one writes the
    # key while the others find the file; none may read it half written.
    context = multiprocessing.get_context("fork")
    workers = 6
    start, answers = context.Barrier(workers), context.Queue()
    processes = [context.Process(target=_first_request, args=(str(tmp_path), start, answers))
                 for _ in range(workers)]
    for process in processes:
        process.start()
    read = [answers.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert len(set(read)) == 1 and not read[0].startswith("failed"), read
    assert [p.name for p in (tmp_path / "dev-certs").iterdir() if p.name.endswith(".tmp")] == []
