"""A bounded load generator for the generation service, on loopback only.

For each concurrency level c, c client tasks send streaming ``POST /generate``
requests back to back until `requests` (per level) have been sent, so at most c
requests are in flight and the run is bounded. Per level it reports time to first
token, inter-token latency and end-to-end latency (p50 and p99, client side), tokens
and requests per second, the error count, and the server's memory: the largest
KV-cache size, the server process's peak RSS, the server-side TTFT and inter-token
quantiles and the mean decode batch during the level (``POST /metrics/reset``
starts each level's window; ``GET /metrics`` reads it).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import urlparse

import numpy as np

from plumbing.cli import Failure

__all__ = ["LoadConfig", "LevelResult", "run_loadtest", "start_server_process", "format_table"]

PROMPT_TEXT = (
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    a, b = 0, 1\n"
    "    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n\nclass Stack:\n"
    "    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n"
    "        self.items.append(item)\n\n    def pop(self):\n        return self.items.pop()\n"
)


@dataclass(frozen=True)
class LoadConfig:
    """levels: concurrency levels. requests: per level (None: max(2 c, 8)). max_new_tokens,
    prompt_tokens (the longest prompt; prompts vary in [prompt_tokens / 2, prompt_tokens]),
    temperature: what each request asks for. timeout_s: per request (client side)."""

    levels: tuple[int, ...] = (1, 4, 16, 64)
    requests: int | None = None
    max_new_tokens: int = 32
    prompt_tokens: int = 32
    temperature: float = 0.8
    timeout_s: float = 300.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.levels or any(not isinstance(c, int) or c < 1 or c > 1024 for c in self.levels):
            raise ValueError(f"concurrency levels must be integers in [1, 1024], got {self.levels}")
        if self.requests is not None and not 1 <= self.requests <= 100_000:
            raise ValueError(f"requests must be in [1, 100000], got {self.requests}")
        if not 1 <= self.max_new_tokens:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not 2 <= self.prompt_tokens <= len(PROMPT_TEXT):
            raise ValueError(f"prompt_tokens must be in [2, {len(PROMPT_TEXT)}], got {self.prompt_tokens}")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")

    def n_requests(self, c: int) -> int:
        return self.requests if self.requests is not None else max(2 * c, 8)


@dataclass
class LevelResult:
    concurrency: int
    requests: int
    ok: int
    errors: int
    wall_s: float
    tokens: int
    tokens_per_s: float
    requests_per_s: float
    ttft_p50_s: float | None
    ttft_p99_s: float | None
    itl_p50_s: float | None
    itl_p99_s: float | None
    e2e_p50_s: float | None
    e2e_p99_s: float | None
    kv_cache_peak_bytes: int | None
    server_peak_rss_bytes: int | None
    server_ttft_p50_s: float | None = None
    server_itl_p50_s: float | None = None
    server_itl_p99_s: float | None = None
    server_mean_batch_rows: float | None = None
    server_cpu_s: float | None = None
    tokens_per_server_cpu_s: float | None = None
    error_examples: list[str] = field(default_factory=list)


def check_loopback_url(url: str) -> str:
    """The URL without a trailing slash; ValueError unless its host is a loopback address."""
    import ipaddress

    u = urlparse(url)
    if u.scheme != "http" or not u.hostname:
        raise ValueError(f"url must look like http://127.0.0.1:PORT, got {url!r}")
    try:
        addrs = {i[4][0] for i in socket.getaddrinfo(u.hostname, u.port or 80)}
    except socket.gaierror as err:
        raise ValueError(f"cannot resolve {u.hostname!r}: {err}") from None
    if not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs):
        raise ValueError(f"the load generator only targets loopback addresses, not {u.hostname!r}")
    return url.rstrip("/")


def _q(values, q) -> float | None:
    return float(np.quantile(values, q)) if len(values) else None


async def _one(client, url: str, body: dict, timeout: float) -> dict:
    t0 = time.perf_counter()
    stamps = []
    try:
        async with client.stream("POST", url + "/generate", json=body, timeout=timeout) as r:
            if r.status_code != 200:
                text = (await r.aread()).decode(errors="replace")
                return {"ok": False, "error": f"HTTP {r.status_code}: {text[:200]}"}
            async for line in r.aiter_lines():
                if not line:
                    continue
                now = time.perf_counter()
                msg = json.loads(line)
                if msg.get("done"):
                    if "error" in msg:
                        return {"ok": False, "error": f"stream error {msg.get('status')}: {msg['error'][:200]}"}
                    return {"ok": True, "stamps": stamps, "e2e": now - t0, "t0": t0}
                stamps.append(now)
        return {"ok": False, "error": "stream ended without a final line"}
    except Exception as err:  # a client-side failure counts as an error of that request
        return {"ok": False, "error": f"{type(err).__name__}: {err}"[:200]}


async def _level(url: str, c: int, cfg: LoadConfig, rng: random.Random) -> LevelResult:
    import httpx

    n = cfg.n_requests(c)
    bodies = []
    for i in range(n):
        length = rng.randint(max(1, cfg.prompt_tokens // 2), cfg.prompt_tokens)
        start = rng.randint(0, len(PROMPT_TEXT) - length)
        bodies.append({"prompt": PROMPT_TEXT[start:start + length], "max_new_tokens": cfg.max_new_tokens,
                       "temperature": cfg.temperature, "top_k": 40, "seed": cfg.seed * 100_003 + i,
                       "stream": True})
    queue = list(reversed(bodies))
    results: list[dict] = []
    kv_peak, rss_peak, server = None, None, {}
    limits = httpx.Limits(max_connections=c + 2, max_keepalive_connections=c + 2)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:
        async def worker():
            while queue:
                body = queue.pop()
                results.append(await _one(client, url, body, cfg.timeout_s))

        cpu0 = None
        try:  # new peak windows on the server for this level (best effort)
            cpu0 = (await client.post(url + "/metrics/reset", timeout=10)).json().get("process_cpu_s")
        except Exception:
            pass
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(c)))
        wall = time.perf_counter() - t0
        try:
            m = (await client.get(url + "/metrics", timeout=10)).json()
            kv_peak, rss_peak = m.get("kv_cache_peak_bytes"), m.get("process_peak_rss_bytes")
            server = {"server_ttft_p50_s": m["ttft_s"]["p50"], "server_itl_p50_s": m["inter_token_s"]["p50"],
                      "server_itl_p99_s": m["inter_token_s"]["p99"], "server_mean_batch_rows": m["mean_batch_rows"]}
            if cpu0 is not None and m.get("process_cpu_s") is not None:
                server["server_cpu_s"] = m["process_cpu_s"] - cpu0
        except Exception:  # memory numbers are best effort; the requests decide errors
            pass
    ok = [r for r in results if r["ok"]]
    ttft = [r["stamps"][0] - r["t0"] for r in ok if r["stamps"]]
    itl = [b - a for r in ok for a, b in zip(r["stamps"][:-1], r["stamps"][1:], strict=True)]
    e2e = [r["e2e"] for r in ok]
    tokens = sum(len(r["stamps"]) for r in ok)
    errors = [r["error"] for r in results if not r["ok"]]
    if server.get("server_cpu_s"):
        server["tokens_per_server_cpu_s"] = tokens / server["server_cpu_s"]
    return LevelResult(
        concurrency=c, requests=n, ok=len(ok), errors=len(errors), wall_s=wall, tokens=tokens,
        tokens_per_s=tokens / wall, requests_per_s=len(ok) / wall,
        ttft_p50_s=_q(ttft, 0.5), ttft_p99_s=_q(ttft, 0.99), itl_p50_s=_q(itl, 0.5), itl_p99_s=_q(itl, 0.99),
        e2e_p50_s=_q(e2e, 0.5), e2e_p99_s=_q(e2e, 0.99), kv_cache_peak_bytes=kv_peak,
        server_peak_rss_bytes=rss_peak, error_examples=sorted(set(errors))[:3], **server,
    )


def run_loadtest(url: str, cfg: LoadConfig = LoadConfig(), progress: bool = True) -> list[LevelResult]:
    """Run every concurrency level against the service at `url` (loopback only)."""
    url = check_loopback_url(url)
    rng = random.Random(cfg.seed)
    out = []
    for c in cfg.levels:
        if progress:
            print(f"loadtest: concurrency {c}, {cfg.n_requests(c)} requests ...", file=sys.stderr, flush=True)
        out.append(asyncio.run(_level(url, c, cfg, rng)))
    return out


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def start_server_process(args: list[str], *, ready_timeout: float = 600.0) -> tuple[subprocess.Popen, str]:
    """Start `python -m efficiency serve --host 127.0.0.1 --port P ARGS` and wait for /health;
    ``Failure`` when the server exits or stays unhealthy for ``ready_timeout`` seconds."""
    import httpx

    port = _free_port()
    cmd = [sys.executable, "-m", "efficiency", "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=None, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    while True:
        if proc.poll() is not None:
            raise Failure(f"the server exited with code {proc.returncode} during start-up")
        try:
            if httpx.get(url + "/health", timeout=2, trust_env=False).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if time.perf_counter() - t0 > ready_timeout:
            proc.terminate()
            raise Failure(f"the server did not become healthy within {ready_timeout:g} s")
        time.sleep(0.25)


def _fmt(v, scale=1.0, digits=1) -> str:
    return "-" if v is None else f"{v * scale:.{digits}f}"


def format_table(results: list[LevelResult]) -> str:
    """A markdown table of the per-level numbers (latencies in ms, memory in MiB).

    Client-side inter-token gaps include network batching (several lines can arrive in
    one read); the server-side ones are the time between a request's tokens leaving
    the decoder. Tokens per server CPU-second divides by the CPU time the server process
    used during the level: on a shared machine it measures the work per token, which
    wall-clock tokens/s mixes with the time other jobs held the cores."""
    head = ("| concurrency | requests | errors | TTFT p50 / p99 (ms) | inter-token p50 / p99 (ms) | "
            "server inter-token p50 / p99 (ms) | end-to-end p50 / p99 (ms) | tokens/s | tokens per server CPU-s | "
            "req/s | mean batch | KV cache peak (MiB) | server peak RSS (MiB) |")
    lines = [head, "|" + "---|" * 13]
    for r in results:
        lines.append(
            f"| {r.concurrency} | {r.requests} | {r.errors} | {_fmt(r.ttft_p50_s, 1e3)} / {_fmt(r.ttft_p99_s, 1e3)} | "
            f"{_fmt(r.itl_p50_s, 1e3)} / {_fmt(r.itl_p99_s, 1e3)} | "
            f"{_fmt(r.server_itl_p50_s, 1e3)} / {_fmt(r.server_itl_p99_s, 1e3)} | {_fmt(r.e2e_p50_s, 1e3, 0)} / "
            f"{_fmt(r.e2e_p99_s, 1e3, 0)} | {r.tokens_per_s:.1f} | {_fmt(r.tokens_per_server_cpu_s)} | "
            f"{r.requests_per_s:.2f} | "
            f"{_fmt(r.server_mean_batch_rows, 1, 1)} | "
            f"{_fmt(r.kv_cache_peak_bytes, 2**-20, 2)} | {_fmt(r.server_peak_rss_bytes, 2**-20, 0)} |")
    return "\n".join(lines)


def results_json(results: list[LevelResult], cfg: LoadConfig, extra: dict | None = None) -> dict:
    return {"config": asdict(cfg), "levels": [asdict(r) for r in results], **(extra or {})}
