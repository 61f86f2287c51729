"""Instructions per request: a figure that machine noise cannot move.

    .venv/bin/python bench/instructions.py TREE [TREE ...] [--requests N]
    # e.g. bench/instructions.py /tmp/old .   (OLD from: git worktree add /tmp/old <commit>)

Timing on a shared 2-core machine moves by several percent from run to run; the number of CPU
instructions a daemon executes per request does not. Each tree's daemon (`python -m localgate
serve`, PYTHONPATH at the tree, its own home, every provider at the zero-think-time fake
upstream) runs under valgrind's cachegrind (no cache simulation), once answering `--requests`
non-stream c=1 chats (the bench's BYOK-direct request; `--stream`: its 50-chunk stream) and once answering that many plus
`--extra`; the difference over `--extra` is what one request costs, start-up excluded. It is the
whole process: aiohttp's server and client, the event loop, our code, the spend log's thread.

Needs valgrind (not installed by CI; `apt-get install valgrind`). About 20 s per tree.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as bench  # noqa: E402  (the benchmark's own helpers)


def _summary(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"no summary in {path}")


async def _instructions(root: str, n: int, tmp: Path, up: int, stream: bool) -> int:
    """Instructions of a daemon's whole life when it answered `n` requests."""
    home = Path(tempfile.mkdtemp(dir=tmp))
    bench.write_config(home, f"http://127.0.0.1:{up}")
    env = bench.child_env(home, f"http://127.0.0.1:{up}")
    env["PYTHONPATH"] = str(Path(root).resolve())
    port = bench.free_port()
    out = home / "cachegrind.out"
    proc = subprocess.Popen(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}",
         sys.executable, "-m", "localgate", "serve", "--port", str(port)],
        env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    body: dict[str, object] = {"model": "openai/gpt-5.2", "messages": bench.MESSAGES}
    if stream:  # the bench's 50-chunk stream with its usage chunk
        body.update(stream=True, stream_options={"include_usage": True}, bench_chunks=50)
    head = {"Authorization": f"Bearer {bench.LOCAL_KEY}"}
    try:
        async with aiohttp.ClientSession() as s:
            for _ in range(600):  # valgrind makes start-up slow
                try:
                    async with s.get(f"http://127.0.0.1:{port}/health") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.5)
            for _ in range(n):
                async with s.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body,
                                  headers=head) as r:
                    await r.read()
                    assert r.status == 200, await r.text()
    finally:
        proc.terminate()
        proc.wait(300)
    return _summary(out)


async def main(trees: list[str], n: int, extra: int, stream: bool) -> None:
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    tmp = Path(tempfile.mkdtemp(prefix="localgate-ir-"))
    up = bench.free_port()
    upstream = subprocess.Popen([sys.executable, str(HERE / "upstream.py"), "--port", str(up)])
    try:
        await asyncio.sleep(1)
        for root in trees:
            base = await _instructions(root, n, tmp, up, stream)
            more = await _instructions(root, n + extra, tmp, up, stream)
            what = "50-chunk stream" if stream else "request"
            print(f"{root}: {(more - base) / extra / 1000:,.1f} k instructions per {what}")
    finally:
        upstream.terminate()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trees", nargs="+")
    ap.add_argument("--requests", type=int, default=100, help="warm-up, in both runs")
    ap.add_argument("--extra", type=int, default=1000, help="requests the second run adds")
    ap.add_argument("--stream", action="store_true", help="50-chunk streams instead")
    args = ap.parse_args()
    asyncio.run(main(args.trees, args.requests, args.extra, args.stream))
