"""A/B: two source trees of localgate served side by side, c=1 requests interleaved, p50 and CPU
per request compared.

    .venv/bin/python bench/ab.py OLD_TREE NEW_TREE [--requests N]
    # e.g. OLD_TREE from: git worktree add /tmp/old <commit>

On a noisy machine the absolute figures of run.py move by 0.1 ms or more; two daemons answering
alternate requests from one client see the same noise, so their difference is what changed.
CPU per request (utime+stime from /proc, whole process) is the steadier of the two figures;
bench/instructions.py gives one that noise cannot move at all. Each daemon runs `python -m localgate serve` with PYTHONPATH at its tree, its own home, and every
provider at one zero-think-time fake upstream (bench/upstream.py). Nothing reaches the network.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as bench  # noqa: E402  (the benchmark's own helpers)


async def main(a: str, b: str, n: int, stream: bool, think_ms: float) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="localgate-ab-"))
    up = bench.free_port()
    procs = [subprocess.Popen([sys.executable, str(HERE / "upstream.py"), "--port", str(up)])]
    ports: dict[str, int] = {}
    try:
        for name, root in (("A", a), ("B", b)):
            home = tmp / name
            home.mkdir()
            bench.write_config(home, f"http://127.0.0.1:{up}")
            env = bench.child_env(home, f"http://127.0.0.1:{up}")
            env["PYTHONPATH"] = str(Path(root).resolve())
            ports[name] = bench.free_port()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "localgate", "serve", "--port", str(ports[name])],
                env=env, cwd=root, stderr=subprocess.DEVNULL))
        await asyncio.sleep(3)
        body: dict[str, object] = {"model": "openai/gpt-5.2",
                                   "messages": [{"role": "user", "content": "hi"}]}
        if stream:  # the bench's 50-chunk stream; the figure is the time to its first chunk
            body.update(stream=True, stream_options={"include_usage": True}, bench_chunks=50,
                        bench_think_ms=think_ms)
        head = {"Authorization": f"Bearer {bench.LOCAL_KEY}"}
        lat: dict[str, list[float]] = {"A": [], "B": []}
        pids = {name: procs[k + 1].pid for k, name in enumerate(("A", "B"))}
        cpu0: dict[str, float] = {}
        async with aiohttp.ClientSession() as s:
            for i in range(n + 300):
                if i == 300:
                    cpu0 = {k: bench.cpu_s(pid) for k, pid in pids.items()}
                for name in (("A", "B") if i % 2 else ("B", "A")):
                    t = time.perf_counter()
                    async with s.post(f"http://127.0.0.1:{ports[name]}/v1/chat/completions",
                                      json=body, headers=head) as r:
                        assert r.status == 200, await r.text()
                        first = None
                        async for chunk in r.content.iter_any():
                            if first is None and b"data:" in chunk:
                                first = time.perf_counter()
                    if i >= 300:  # warm-up excluded
                        lat[name].append((first or time.perf_counter()) - t)
        cpu = {k: (bench.cpu_s(pid) - cpu0[k]) / n * 1e6 for k, pid in pids.items()}
        pa, pb = (statistics.median(lat[k]) * 1e3 for k in ("A", "B"))
        what = "TTFB p50" if stream else "p50"
        print(f"A {a}: {what} {pa:.3f} ms, CPU {cpu['A']:.0f} µs/request\n"
              f"B {b}: {what} {pb:.3f} ms, CPU {cpu['B']:.0f} µs/request\n"
              f"B - A: {(pb - pa) * 1e3:+.1f} µs {what}, {cpu['B'] - cpu['A']:+.0f} µs CPU")
    finally:
        for p in procs:
            p.terminate()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--stream", action="store_true", help="50-chunk streams: time to the first")
    ap.add_argument("--think-ms", type=float, default=0.0,
                    help="with --stream: the upstream's time from its headers to the first chunk")
    args = ap.parse_args()
    asyncio.run(main(args.a, args.b, args.requests, args.stream, args.think_ms))
