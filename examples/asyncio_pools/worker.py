"""An asyncio worker: parsing in a thread pool, scoring in a process pool; a job whose scoring
fails is skipped (the error is absorbed by the job's span).

``python worker.py job-1 job-2-bad``. The pools are the standard library's: setup() makes them
carry the trace, and each forked pool worker writes its own spans file.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import tracectx
from tracectx import ErrorKind, TracedError, mark_handled, new_error, traced

tracectx.setup("scorer", spans_file=f"{os.environ.get('SPANS_DIR', 'spans')}/scorer.otlp.jsonl")


@traced
def parse(job: str) -> dict[str, str]:  # in a thread
    return {"job": job}


@traced
def score(doc: dict[str, str]) -> int:  # in a pool process
    if doc["job"].endswith("-bad"):
        raise new_error(ErrorKind.BUSINESS, "unscorable document", code="E_SCORE", job=doc["job"])
    return len(doc["job"])


async def handle(job: str, threads: ThreadPoolExecutor, procs: ProcessPoolExecutor) -> int | None:
    loop = asyncio.get_running_loop()
    with traced(f"job {job}"):
        doc = await loop.run_in_executor(threads, parse, job)
        try:
            return await loop.run_in_executor(procs, score, doc)
        except TracedError as err:
            mark_handled(err)  # skipped: this span absorbed the error
            return None


async def main(jobs: list[str]) -> None:
    fork = multiprocessing.get_context("fork")  # forked workers inherit setup()
    with ThreadPoolExecutor(2) as threads, ProcessPoolExecutor(2, mp_context=fork) as procs:
        results = await asyncio.gather(*(handle(job, threads, procs) for job in jobs))
    print(dict(zip(jobs, results, strict=True)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
