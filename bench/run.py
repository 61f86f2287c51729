"""localgate against the practical floor: direct upstream, a minimal reference proxy, localgate.

    .venv/bin/python bench/run.py            # full run (~1-3 min on 2 cores)
    .venv/bin/python bench/run.py --quick    # smoke run (< 30 s)
    .venv/bin/python bench/run.py --requests 6000

Starts bench/upstream.py, bench/refproxy.py and `python -m localgate serve --port P` (headless,
exactly as a user runs it) as subprocesses, drives all three paths from one aiohttp client
session, interleaving the paths so that drift hits them equally, prints a markdown table with
the targets and writes the raw numbers to bench/results-latest.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV_PY = ROOT / ".venv" / "bin" / "python"
PY = str(VENV_PY) if VENV_PY.exists() else sys.executable
LOCAL_KEY = "lg-bench-local-key-0123456789abcdef"
PROVIDER_KEY = "sk-bench-provider-key"
PATHS = ("direct", "ref", "localgate")
CLK = os.sysconf("SC_CLK_TCK")
MESSAGES = [{"role": "system", "content": "You are a helpful assistant. Answer briefly."},
            {"role": "user", "content": "Say hello, and tell me one fact about the sea."}]
TARGETS = {"added_p50_ms": 0.5, "cpu_ratio": 2.0, "added_ttfb_ms": 1.0, "idle_rss_mb": 60.0,
           "launch_s": 0.6}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- processes ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A child process with its output in a log file; stop() is idempotent."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.log_path = logdir / f"{name}-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.p = subprocess.Popen(argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                  stdout=self._log, stderr=subprocess.STDOUT)
        self.pid = self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self._log.close()


def cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds (from /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child_env(home: Path, upstream_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_API_KEY") and k.lower() not in
           ("http_proxy", "https_proxy", "all_proxy")}
    env.update(LOCALGATE_HOME=str(home), LOCALGATE_API_KEY=LOCAL_KEY,
               OPENAI_API_KEY=PROVIDER_KEY, NO_PROXY="127.0.0.1,localhost",
               PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    return env


def write_config(home: Path, upstream_url: str) -> None:
    """Every provider at the fake upstream; nothing may reach the network."""
    direct = ("openai", "x-ai", "mistral", "moonshotai", "minimax", "z-ai", "deepseek", "groq",
              "google", "openrouter", "anthropic", "ollama", "lmstudio")
    lines = ["[catalog]", "refresh = false", ""]
    for p in direct:
        lines += [f'[providers."{p}"]', f'base_url = "{upstream_url}/{p}/v1"', ""]
    lines += ["[providers.kilo]", f'base_url = "{upstream_url}/api/gateway"',
              f'api_url = "{upstream_url}"', ""]
    (home / "config.toml").write_text("\n".join(lines))


# ---- requests ----------------------------------------------------------------------------------

class Target:
    def __init__(self, name: str, url: str, model: str, key: str, pid: int | None) -> None:
        self.name, self.url, self.pid = name, url, pid
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        self.body = json.dumps({"model": model, "messages": MESSAGES}).encode()
        self.stream_body = json.dumps({"model": model, "messages": MESSAGES, "stream": True,
                                       "stream_options": {"include_usage": True},
                                       "bench_chunks": 50}).encode()


async def chat(s: aiohttp.ClientSession, t: Target) -> aiohttp.ClientResponse:
    async with s.post(t.url, data=t.body, headers=t.headers) as r:
        await r.read()
        if r.status != 200:
            raise RuntimeError(f"{t.name}: HTTP {r.status}: {(await r.read())[:300]!r}")
        return r


async def stream(s: aiohttp.ClientSession, t: Target) -> tuple[int, int, int]:
    """(ns to the first body chunk with `data:`, ns to the end of the stream, body reads)."""
    t0 = time.perf_counter_ns()
    first = reads = 0
    tail = b""
    async with s.post(t.url, data=t.stream_body, headers=t.headers) as r:
        if r.status != 200:
            raise RuntimeError(f"{t.name}: HTTP {r.status}: {(await r.read())[:300]!r}")
        async for chunk in r.content.iter_any():
            reads += 1
            if not first and b"data:" in chunk:
                first = time.perf_counter_ns() - t0
            tail = (tail + chunk)[-64:]
    total = time.perf_counter_ns() - t0
    if b"[DONE]" not in tail:
        raise RuntimeError(f"{t.name}: stream did not end with [DONE]")
    return first, total, reads


def rotated(targets: list[Target], i: int) -> list[Target]:
    k = i % len(targets)
    return targets[k:] + targets[:k]


def pct(xs: list[float], q: float) -> float:
    ys = sorted(xs)
    return ys[min(len(ys) - 1, max(0, int(round(q / 100 * len(ys) + 0.5)) - 1))]


async def wait_chat(s: aiohttp.ClientSession, t: Target, proc: Proc, timeout: float) -> float:
    """Retry a chat completion until one succeeds; returns perf_counter() at success."""
    end = time.perf_counter() + timeout
    while True:
        try:
            await chat(s, t)
            return time.perf_counter()
        except (aiohttp.ClientConnectionError, RuntimeError) as exc:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}") from exc
            if time.perf_counter() > end:
                raise RuntimeError(f"{proc.name} not serving after {timeout}s: {exc}\n"
                                   f"{proc.tail()}") from exc
            await asyncio.sleep(0.002)


# ---- phases ------------------------------------------------------------------------------------

async def latency(s: aiohttp.ClientSession, targets: list[Target], n: int,
                  warm: int) -> dict[str, Any]:
    lat: dict[str, list[float]] = {t.name: [] for t in targets}
    for i in range(warm + n):
        for t in rotated(targets, i):
            t0 = time.perf_counter_ns()
            await chat(s, t)
            if i >= warm:
                lat[t.name].append((time.perf_counter_ns() - t0) / 1e6)
    out: dict[str, Any] = {}
    for name, xs in lat.items():
        out[name] = {"n": len(xs), "p50_ms": pct(xs, 50), "p90_ms": pct(xs, 90),
                     "p99_ms": pct(xs, 99), "mean_ms": statistics.fmean(xs),
                     "samples_us": [round(x * 1000) for x in xs]}
    for name in lat:
        out[name]["added_p50_ms"] = out[name]["p50_ms"] - out["direct"]["p50_ms"]
        out[name]["added_p99_ms"] = out[name]["p99_ms"] - out["direct"]["p99_ms"]
    return out


async def throughput(s: aiohttp.ClientSession, targets: list[Target], upstream_pid: int,
                     conc: int, n: int, rounds: int) -> dict[str, Any]:
    acc = {t.name: {"requests": 0, "wall_s": 0.0, "proxy_cpu_s": 0.0, "upstream_cpu_s": 0.0}
           for t in targets}

    async def block(t: Target, count: int) -> None:
        left = count

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await chat(s, t)
        await asyncio.gather(*(worker() for _ in range(conc)))

    for t in targets:  # warm-up: fill each connection pool to this concurrency
        await block(t, max(conc * 4, 200))
    per_round = max(1, n // rounds)
    for r in range(rounds):
        for t in rotated(targets, r):
            gc.collect()
            c0 = cpu_s(t.pid) if t.pid else 0.0
            u0 = cpu_s(upstream_pid)
            w0 = time.perf_counter()
            await block(t, per_round)
            w1 = time.perf_counter()
            a = acc[t.name]
            a["requests"] += per_round
            a["wall_s"] += w1 - w0
            a["upstream_cpu_s"] += cpu_s(upstream_pid) - u0
            if t.pid:
                a["proxy_cpu_s"] += cpu_s(t.pid) - c0
    out: dict[str, Any] = {}
    for name, a in acc.items():
        out[name] = {**a, "rps": a["requests"] / a["wall_s"],
                     "proxy_cpu_us_per_req": a["proxy_cpu_s"] / a["requests"] * 1e6
                     if name != "direct" else None,
                     "upstream_cpu_us_per_req": a["upstream_cpu_s"] / a["requests"] * 1e6}
    return out


async def streaming(s: aiohttp.ClientSession, targets: list[Target], n: int,
                    warm: int) -> dict[str, Any]:
    ttfb: dict[str, list[float]] = {t.name: [] for t in targets}
    total: dict[str, list[float]] = {t.name: [] for t in targets}
    reads: dict[str, list[float]] = {t.name: [] for t in targets}
    for i in range(warm + n):
        for t in rotated(targets, i):
            f, tot, k = await stream(s, t)
            if i >= warm:
                ttfb[t.name].append(f / 1e6)
                total[t.name].append(tot / 1e6)
                reads[t.name].append(k)
    out = {name: {"n": len(ttfb[name]), "ttfb_p50_ms": pct(ttfb[name], 50),
                  "ttfb_p99_ms": pct(ttfb[name], 99), "total_p50_ms": pct(total[name], 50),
                  "total_p99_ms": pct(total[name], 99),
                  "client_reads_p50": pct(reads[name], 50)} for name in ttfb}
    for name in out:
        out[name]["added_ttfb_p50_ms"] = out[name]["ttfb_p50_ms"] - out["direct"]["ttfb_p50_ms"]
        out[name]["added_total_p50_ms"] = (out[name]["total_p50_ms"]
                                           - out["direct"]["total_p50_ms"])
    return out


async def launches(s: aiohttp.ClientSession, env: dict[str, str], logdir: Path,
                   times: int, procs: list[Proc]) -> dict[str, Any]:
    samples = []
    for i in range(times):
        # a home of its own (one daemon per home): the running daemon's config, no spend log yet
        home = logdir / f"launch-home-{i}"
        home.mkdir()
        shutil.copy(Path(env["LOCALGATE_HOME"]) / "config.toml", home / "config.toml")
        launch_env = {**env, "LOCALGATE_HOME": str(home)}
        port = free_port()
        t = Target("localgate", f"http://127.0.0.1:{port}/v1/chat/completions",
                   "openai/gpt-5.2", LOCAL_KEY, None)
        gc.collect()
        t0 = time.perf_counter()
        proc = Proc("localgate-launch", [PY, "-m", "localgate", "serve", "--port", str(port)],
                    launch_env, logdir)
        procs.append(proc)
        try:
            samples.append(await wait_chat(s, t, proc, timeout=20) - t0)
        finally:
            proc.stop()
    return {"samples_s": samples, "median_s": statistics.median(samples)}


# ---- report ------------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def table(r: dict[str, Any]) -> str:
    lat, st, rss, la = r["latency_c1"], r["streaming"], r["rss_mb"], r["launch"]

    def ms(x: float) -> str:
        return f"{x:.3f}"

    def add(path: dict[str, Any], key: str, added: str) -> str:
        return f"{ms(path[key])} ({path[added]:+.3f})"

    rows = [("metric", "direct", "ref proxy", "localgate", "target", "result"), ("---",) * 6]
    d, f, g = lat["direct"], lat["ref"], lat["localgate"]
    rows.append(("c=1 latency p50, ms (+added)", ms(d["p50_ms"]), add(f, "p50_ms", "added_p50_ms"),
                 add(g, "p50_ms", "added_p50_ms"), f"added <= {TARGETS['added_p50_ms']} ms",
                 verdict(g["added_p50_ms"] <= TARGETS["added_p50_ms"])))
    rows.append(("c=1 latency p99, ms (+added)", ms(d["p99_ms"]), add(f, "p99_ms", "added_p99_ms"),
                 add(g, "p99_ms", "added_p99_ms"), "-", ""))
    for c in r["concurrency"]:
        tp = r[f"throughput_c{c}"]
        d, f, g = tp["direct"], tp["ref"], tp["localgate"]
        rows.append((f"c={c} requests/s", f"{d['rps']:.0f}", f"{f['rps']:.0f}", f"{g['rps']:.0f}",
                     "-", ""))
        ratio = g["proxy_cpu_us_per_req"] / f["proxy_cpu_us_per_req"]
        rows.append((f"c={c} proxy CPU µs/request", "-", f"{f['proxy_cpu_us_per_req']:.0f}",
                     f"{g['proxy_cpu_us_per_req']:.0f} ({ratio:.2f}x ref)",
                     f"<= {TARGETS['cpu_ratio']:g}x ref", verdict(ratio <= TARGETS["cpu_ratio"])))
        rows.append((f"c={c} upstream CPU µs/request", f"{d['upstream_cpu_us_per_req']:.0f}",
                     f"{f['upstream_cpu_us_per_req']:.0f}", f"{g['upstream_cpu_us_per_req']:.0f}",
                     "-", ""))
    d, f, g = st["direct"], st["ref"], st["localgate"]
    rows.append(("stream TTFB p50, ms (+added)", ms(d["ttfb_p50_ms"]),
                 add(f, "ttfb_p50_ms", "added_ttfb_p50_ms"),
                 add(g, "ttfb_p50_ms", "added_ttfb_p50_ms"),
                 f"added <= {TARGETS['added_ttfb_ms']:g} ms",
                 verdict(g["added_ttfb_p50_ms"] <= TARGETS["added_ttfb_ms"])))
    rows.append(("stream total p50 (50 chunks), ms", ms(d["total_p50_ms"]),
                 add(f, "total_p50_ms", "added_total_p50_ms"),
                 add(g, "total_p50_ms", "added_total_p50_ms"), "-", ""))
    rows.append(("RSS idle after start, MB", "-", f"{rss['ref_idle']:.1f}",
                 f"{rss['localgate_idle']:.1f}", f"<= {TARGETS['idle_rss_mb']:g} MB",
                 verdict(rss["localgate_idle"] <= TARGETS["idle_rss_mb"])))
    rows.append(("RSS after load, MB", "-", f"{rss['ref_after']:.1f}",
                 f"{rss['localgate_after']:.1f}", "-", ""))
    rows.append((f"launch -> first chat served, s (median of {len(la['samples_s'])})", "-", "-",
                 f"{la['median_s']:.3f}", f"<= {TARGETS['launch_s']:g} s",
                 verdict(la["median_s"] <= TARGETS["launch_s"])))
    widths = [max(len(row[i]) for row in rows if row[0] != "---") for i in range(6)]
    lines = []
    for row in rows:
        if row[0] == "---":
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        else:
            lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    return "\n".join(lines)


# ---- main --------------------------------------------------------------------------------------

async def run(args: argparse.Namespace, procs: list[Proc], tmp: Path) -> dict[str, Any]:
    n_tp = args.requests
    n_lat = max(50, n_tp * 2 // 3)
    n_stream = max(20, n_tp // 10)
    n_launch = 3 if args.quick else 5
    home = tmp / "home"
    home.mkdir()
    up_port, ref_port, lg_port = free_port(), free_port(), free_port()
    up_url = f"http://127.0.0.1:{up_port}"
    write_config(home, up_url)
    env = child_env(home, up_url)

    log(f"starting upstream :{up_port}, refproxy :{ref_port}")
    up = Proc("upstream", [PY, str(HERE / "upstream.py"), "--port", str(up_port)], env, tmp)
    procs.append(up)
    ref = Proc("refproxy", [PY, str(HERE / "refproxy.py"), "--port", str(ref_port),
                            "--upstream", up_url], env, tmp)
    procs.append(ref)
    targets = [Target("direct", f"{up_url}/d/v1/chat/completions", "gpt-5.2", PROVIDER_KEY,
                      None),
               Target("ref", f"http://127.0.0.1:{ref_port}/r/v1/chat/completions", "gpt-5.2",
                      PROVIDER_KEY, ref.pid)]
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                     timeout=aiohttp.ClientTimeout(total=60)) as s:
        await wait_chat(s, targets[0], up, 15)
        await wait_chat(s, targets[1], ref, 15)

        log(f"starting localgate :{lg_port} (python -m localgate serve)")
        lg = Proc("localgate", [PY, "-m", "localgate", "serve", "--port", str(lg_port)], env, tmp)
        procs.append(lg)
        lg_t = Target("localgate", f"http://127.0.0.1:{lg_port}/v1/chat/completions",
                      "openai/gpt-5.2", LOCAL_KEY, lg.pid)
        end = time.perf_counter() + 20
        while True:  # idle RSS is taken once it answers /health, before any chat
            try:
                async with s.get(f"http://127.0.0.1:{lg_port}/health") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                pass
            if not lg.alive() or time.perf_counter() > end:
                raise RuntimeError(f"localgate did not start:\n{lg.tail()}")
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        rss = {"localgate_idle": rss_mb(lg.pid), "ref_idle": rss_mb(ref.pid)}
        async with s.post(lg_t.url, data=lg_t.body, headers=lg_t.headers) as r:
            route = r.headers.get("x-localgate-route")
            if r.status != 200 or route != "byok":
                raise RuntimeError(f"localgate answered {r.status} route={route}: "
                                   f"{(await r.read())[:300]!r}\n{lg.tail()}")
        targets.append(lg_t)

        gc.disable()  # the driver's own GC pauses would only add noise to every path
        try:
            log(f"latency c=1: {n_lat} requests per path, interleaved")
            lat = await latency(s, targets, n_lat, warm=max(20, n_lat // 10))
            results: dict[str, Any] = {"latency_c1": lat, "concurrency": [16, 64]}
            for c in (16, 64):
                log(f"throughput c={c}: {n_tp} requests per path, interleaved in rounds")
                results[f"throughput_c{c}"] = await throughput(s, targets, up.pid, c, n_tp,
                                                               rounds=3 if args.quick else 5)
            log(f"streaming: {n_stream} 50-chunk streams per path, interleaved")
            results["streaming"] = await streaming(s, targets, n_stream,
                                                   warm=max(5, n_stream // 10))
        finally:
            gc.enable()
        rss.update(localgate_after=rss_mb(lg.pid), ref_after=rss_mb(ref.pid))
        results["rss_mb"] = rss
        async with s.get(f"{up_url}/stats") as r:
            results["upstream_connections_by_prefix"] = await r.json()

        log(f"launch -> first served chat: {n_launch} launches")
        results["launch"] = await launches(s, env, tmp, n_launch, procs)
    results["meta"] = {"quick": args.quick, "requests": n_tp, "latency_requests": n_lat,
                       "stream_iterations": n_stream, "python": platform.python_version(),
                       "aiohttp": aiohttp.__version__, "cpus": os.cpu_count(),
                       "machine": platform.machine(), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                       "targets": TARGETS}
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: few iterations (< 30 s)")
    ap.add_argument("--requests", type=int, default=None,
                    help="requests per path per throughput level (default 3000, quick 600); "
                    "c=1 latency uses 2/3 of it, streaming 1/10")
    ap.add_argument("--out", default=str(HERE / "results-latest.json"), help="JSON output")
    args = ap.parse_args()
    if args.requests is None:
        args.requests = 600 if args.quick else 3000

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    procs: list[Proc] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="localgate-bench-") as tmpdir:
        try:
            results = asyncio.run(run(args, procs, Path(tmpdir)))
        except KeyboardInterrupt:
            log("interrupted")
            return 130
        except RuntimeError as exc:
            log(f"failed: {exc}")
            return 1
        finally:
            for p in reversed(procs):
                p.stop()
    results["meta"]["duration_s"] = time.perf_counter() - t0
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(table(results))
    log(f"done in {results['meta']['duration_s']:.0f} s; raw numbers in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
