"""HTTP text-generation service: FastAPI + uvicorn with a continuous-batching scheduler.

Endpoints (the contract of DESIGN.md section 3):

- ``POST /generate`` with JSON ``{"prompt": str, "max_new_tokens": int, "temperature": float,
  "top_k": int, "top_p": float, "seed": int, "stream": bool}`` (all but ``prompt``
  optional) returns ``{"text", "tokens", "ttft_s", "total_s"}`` (plus ``finish_reason``,
  ``prompt_tokens``); with ``"stream": true`` the body is NDJSON, one line per token
  ``{"token": str, "token_id": int, "index": int, "t_s": float}`` and a last line with
  ``"done": true`` and the summary fields.
- ``GET /health``: 200 when the scheduler runs. ``GET /metrics``: counters, queue and
  batch state, KV-cache bytes, process memory and latency quantiles.
  ``POST /metrics/reset`` starts new windows (latency quantiles, batch rows, KV-cache
  and process peaks); the load generator calls it before each concurrency level.

Errors: malformed JSON -> 400; wrong field types or values, unknown fields, prompt +
max_new_tokens past the model's context -> 422; a prompt longer than the prompt limit ->
413; a full queue -> 503 (with ``Retry-After``); a request that outlives its timeout ->
504 (non-streaming) or a last line with ``"error"`` (streaming). Every error body is
``{"error": message}`` and the server keeps serving.

Scheduling (one worker thread owns the model): requests wait in a bounded queue; between
two decode steps the worker admits waiting requests into the running batch while it has
fewer than ``max_batch_size`` rows (`DecodeBatch.admit`, continuous batching), drops rows
that finished, timed out or lost their client, and runs one step for every row.
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import contextlib
import itertools
import json
import math
import os
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from efficiency.data import ByteTokenizer, get_batch, load_corpus, train_val_split
from efficiency.generate import DecodeBatch, SamplingParams
from efficiency.gpt import GPT, GPT_PRESETS
from efficiency.train import (
    evaluate_loss,
    load_checkpoint,
    make_train_step,
    read_checkpoint_meta,
    save_checkpoint,
    seeded,
)

__all__ = ["ServiceConfig", "Scheduler", "create_app", "start_server", "ServerHandle", "cache_dir",
           "default_model", "load_model"]

FIELDS = {"prompt", "max_new_tokens", "temperature", "top_k", "top_p", "seed", "stream"}


@dataclass(frozen=True)
class ServiceConfig:
    """Limits and scheduling of the service.

    max_batch_size: rows decoded together. max_queue: requests waiting for a row (more get
    503). max_prompt_tokens: longest prompt (None: the model's context - 1).
    max_new_tokens: largest allowed max_new_tokens (None: the model's context - 1);
    default_new_tokens: used when a request leaves it out. request_timeout_s: from arrival
    to the last token. use_cache: KV cache (False recomputes, for comparisons only).
    """

    max_batch_size: int = 16
    max_queue: int = 64
    max_prompt_tokens: int | None = None
    max_new_tokens: int | None = None
    default_new_tokens: int = 32
    request_timeout_s: float = 60.0
    use_cache: bool = True

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_queue", "default_new_tokens"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name in ("max_prompt_tokens", "max_new_tokens"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {v!r}")
        if not (self.request_timeout_s > 0 and math.isfinite(self.request_timeout_s)):
            raise ValueError(f"request_timeout_s must be positive, got {self.request_timeout_s}")


class RequestError(Exception):
    """A request the service rejects: HTTP status and a one-sentence message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Request:
    id: int
    prompt: list[int]
    params: SamplingParams
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue
    arrived: float
    deadline: float
    cancelled: bool = False
    slot: int | None = None  # request index inside the running DecodeBatch
    n_tokens: int = 0
    first_token_at: float | None = None
    last_token_at: float | None = None

    def send(self, event: tuple) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)


def _quantiles(values) -> dict:
    if not values:
        return {"count": 0, "p50": None, "p90": None, "p99": None, "mean": None}
    a = np.asarray(values, dtype=float)
    return {"count": int(a.size), "p50": float(np.quantile(a, 0.5)), "p90": float(np.quantile(a, 0.9)),
            "p99": float(np.quantile(a, 0.99)), "mean": float(a.mean())}


def _proc_status(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


@dataclass
class _Metrics:
    window: int = 10_000
    counters: collections.Counter = field(default_factory=collections.Counter)
    ttft: collections.deque = field(default_factory=collections.deque)
    e2e: collections.deque = field(default_factory=collections.deque)
    itl: collections.deque = field(default_factory=collections.deque)
    batch_rows: collections.deque = field(default_factory=collections.deque)
    kv_cache_bytes: int = 0
    kv_cache_peak_bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, value: float) -> None:
        with self.lock:
            d = getattr(self, name)
            d.append(value)
            if len(d) > self.window:
                d.popleft()

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counters[name] += n


class Scheduler:
    """Owns the model; a worker thread batches requests and decodes them step by step."""

    def __init__(self, model: GPT, config: ServiceConfig, tokenizer=None, eos_id: int | None = None) -> None:
        self.model = model.eval()
        self.config = config
        self.tokenizer = tokenizer or ByteTokenizer()
        self.eos_id = eos_id
        ctx = model.config.context
        self.max_prompt = min(config.max_prompt_tokens or ctx - 1, ctx - 1)
        self.max_new = min(config.max_new_tokens or ctx - 1, ctx - 1)
        self.metrics = _Metrics()
        self._pending: collections.deque[_Request] = collections.deque()
        self._active: dict[int, _Request] = {}  # DecodeBatch slot -> request
        self._batch: DecodeBatch | None = None
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._ids = itertools.count()
        self._thread = threading.Thread(target=self._run, name="generation-scheduler", daemon=True)
        self.started = time.time()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        self._thread.join(timeout=10)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    # ------------------------------------------------------------------ requests
    def parse(self, body: bytes) -> tuple[list[int], SamplingParams, bool]:
        """Validate a /generate body; raises RequestError(4xx) naming the bad field."""
        # an escaped control character spends 6 JSON bytes on a 1-byte token (the worst case)
        limit = 4096 + 12 * self.max_prompt
        if len(body) > limit:
            raise RequestError(413, f"request body of {len(body)} bytes exceeds {limit} bytes")
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RequestError(400, f"malformed JSON body: {err}") from None
        if not isinstance(data, dict):
            raise RequestError(400, f"the JSON body must be an object, got {type(data).__name__}")
        unknown = sorted(set(data) - FIELDS)
        if unknown:
            raise RequestError(422, f"unknown field(s) {unknown}; allowed: {sorted(FIELDS)}")
        prompt = data.get("prompt")
        if not isinstance(prompt, str):
            raise RequestError(422, f"'prompt' must be a string, got {type(prompt).__name__}")
        if not prompt:
            raise RequestError(422, "'prompt' must not be empty")
        stream = data.get("stream", False)
        if not isinstance(stream, bool):
            raise RequestError(422, f"'stream' must be true or false, got {stream!r}")

        def number(name, default, kind):
            v = data.get(name, default)
            ok = isinstance(v, int) if kind is int else isinstance(v, int | float)
            if v is None and name == "seed":
                return None
            if isinstance(v, bool) or not ok:
                raise RequestError(422, f"'{name}' must be {'an integer' if kind is int else 'a number'}, got {v!r}")
            return v

        max_new = number("max_new_tokens", self.config.default_new_tokens, int)
        if not 1 <= max_new <= self.max_new:
            raise RequestError(422, f"'max_new_tokens' must be in [1, {self.max_new}], got {max_new}")
        temperature = number("temperature", 1.0, float)
        if not (math.isfinite(temperature) and 0 <= temperature <= 100):
            raise RequestError(422, f"'temperature' must be in [0, 100] (0 = greedy), got {temperature}")
        top_k = number("top_k", 0, int)
        top_p = number("top_p", 1.0, float)
        seed = number("seed", None, int)
        try:
            params = SamplingParams(max_new_tokens=max_new, temperature=float(temperature), top_k=top_k,
                                    top_p=float(top_p), seed=seed)
        except ValueError as err:
            raise RequestError(422, str(err)) from None
        tokens = self.tokenizer.encode(prompt)
        if len(tokens) > self.max_prompt:
            raise RequestError(413, f"prompt has {len(tokens)} tokens, the limit is {self.max_prompt}")
        ctx = self.model.config.context
        if len(tokens) + max_new > ctx:
            raise RequestError(422, f"prompt ({len(tokens)} tokens) + max_new_tokens ({max_new}) exceed "
                                    f"the model's context of {ctx} tokens")
        return tokens, params, stream

    def submit(self, tokens: list[int], params: SamplingParams, loop: asyncio.AbstractEventLoop) -> _Request:
        """Queue a validated request; raises RequestError(503) when the queue is full."""
        now = time.perf_counter()
        req = _Request(id=next(self._ids), prompt=tokens, params=params, loop=loop, events=asyncio.Queue(),
                       arrived=now, deadline=now + self.config.request_timeout_s)
        with self._cv:
            if not self.alive:
                raise RequestError(503, "the generation worker is not running")
            if len(self._pending) >= self.config.max_queue:
                self.metrics.count("rejected_queue_full")
                raise RequestError(503, f"queue full ({self.config.max_queue} requests waiting); retry later")
            self._pending.append(req)
            self._cv.notify()
        return req

    def cancel(self, req: _Request) -> None:
        """Mark a request abandoned (client gone); the worker drops it before the next step."""
        req.cancelled = True

    # ------------------------------------------------------------------ worker
    def _finish(self, req: _Request, event: tuple) -> None:
        req.send(event)
        if req.slot is not None:
            self._active.pop(req.slot, None)

    def _expire(self, now: float) -> None:
        with self._cv:
            waiting = list(self._pending)
            self._pending = collections.deque(r for r in waiting if not (r.cancelled or now > r.deadline))
        for r in waiting:
            if r.cancelled:
                self.metrics.count("cancelled")
            elif now > r.deadline:
                self.metrics.count("timed_out")
                r.send(("error", 504, f"request timed out after {self.config.request_timeout_s:g} s in the queue"))
        for slot, r in list(self._active.items()):
            if r.cancelled or now > r.deadline:
                self._batch.cancel(slot)
                self._batch.release(slot)
                self._active.pop(slot)
                if r.cancelled:
                    self.metrics.count("cancelled")
                else:
                    self.metrics.count("timed_out")
                    r.send(("error", 504, f"request timed out after {self.config.request_timeout_s:g} s "
                                          f"({r.n_tokens} tokens generated)"))

    def _admit(self) -> None:
        room = self.config.max_batch_size - len(self._active)
        with self._cv:
            new = [self._pending.popleft() for _ in range(min(room, len(self._pending)))]
        if not new:
            return
        prompts, params = [r.prompt for r in new], [r.params for r in new]
        if self._batch is None or self._batch.done:
            self._batch = DecodeBatch(self.model, prompts, params, use_cache=self.config.use_cache,
                                      eos_id=self.eos_id)
            slots = list(range(len(new)))
        else:
            slots = self._batch.admit(prompts, params)
        for r, s in zip(new, slots, strict=True):
            r.slot = s
            self._active[s] = r

    def _step(self) -> None:
        batch = self._batch
        emitted = batch.step()
        now = time.perf_counter()
        self.metrics.count("decode_steps")
        self.metrics.add("batch_rows", len(emitted))
        cache = batch.cache_bytes()
        self.metrics.kv_cache_bytes = cache
        self.metrics.kv_cache_peak_bytes = max(self.metrics.kv_cache_peak_bytes, cache)
        self.metrics.count("tokens_generated", len(emitted))
        for slot, tok in emitted:
            r = self._active.get(slot)
            if r is None:
                continue
            if r.first_token_at is None:
                r.first_token_at = now
                self.metrics.add("ttft", now - r.arrived)
            else:
                self.metrics.add("itl", now - r.last_token_at)
            r.last_token_at = now
            r.n_tokens += 1
            r.send(("token", tok, now - r.arrived))
            if slot not in batch.active:
                self.metrics.count("completed")
                self.metrics.add("e2e", now - r.arrived)
                self._finish(r, ("done", batch.results[slot].finish_reason, now - r.arrived))
                batch.release(slot)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cv:
                if not self._pending and not self._active:
                    self._cv.wait(timeout=0.1)
                    if not self._pending:
                        continue
            try:
                self._expire(time.perf_counter())
                self._admit()
                if self._active:
                    self._step()
                elif self._batch is not None and self._batch.done:
                    self._batch = None
                    self.metrics.kv_cache_bytes = 0
            except Exception as err:  # keep serving: fail the rows in flight, start afresh
                self.metrics.count("internal_errors")
                for r in list(self._active.values()):
                    self._finish(r, ("error", 500, f"internal error during decoding: {err!r}"))
                self._active.clear()
                self._batch = None
        for r in list(self._active.values()) + list(self._pending):
            r.send(("error", 503, "the server is shutting down"))

    # ------------------------------------------------------------------ metrics
    def snapshot(self) -> dict:
        m = self.metrics
        with m.lock:
            counters = dict(m.counters)
            ttft, e2e, itl, rows = list(m.ttft), list(m.e2e), list(m.itl), list(m.batch_rows)
        return {
            "uptime_s": time.time() - self.started,
            "counters": counters,
            "queue_length": len(self._pending),
            "active_requests": len(self._active),
            "max_batch_size": self.config.max_batch_size,
            "max_queue": self.config.max_queue,
            "mean_batch_rows": float(np.mean(rows)) if rows else None,
            "kv_cache_bytes": m.kv_cache_bytes,
            "kv_cache_peak_bytes": m.kv_cache_peak_bytes,
            "process_rss_bytes": _proc_status("VmRSS"),
            "process_peak_rss_bytes": _proc_status("VmHWM"),
            "process_cpu_s": time.process_time(),
            "ttft_s": _quantiles(ttft),
            "inter_token_s": _quantiles(itl),
            "e2e_s": _quantiles(e2e),
        }


def create_app(model: GPT, config: ServiceConfig = ServiceConfig(), *, tokenizer=None,
               eos_id: int | None = None, info: dict | None = None):
    """The FastAPI app; the scheduler thread starts and stops with the app's lifespan."""
    sched = Scheduler(model, config, tokenizer=tokenizer, eos_id=eos_id)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        sched.start()
        try:
            yield
        finally:
            sched.stop()

    app = FastAPI(title="sciml-workbench text generation", lifespan=lifespan)
    app.state.scheduler = sched
    tok = sched.tokenizer
    byte_level = isinstance(tok, ByteTokenizer)
    model_info = {"config": asdict(model.config), **(info or {})}

    def error(status: int, message: str, **headers) -> JSONResponse:
        sched.metrics.count(f"http_{status}")
        return JSONResponse({"error": message}, status_code=status, headers=headers or None)

    @app.get("/health")
    async def health():
        if not sched.alive:
            return JSONResponse({"status": "stopped"}, status_code=503)
        return {"status": "ok", "model": model_info, "queue_length": len(sched._pending)}

    @app.get("/metrics")
    async def metrics():
        return sched.snapshot()

    @app.post("/metrics/reset")
    async def reset_peaks():
        """Start new windows: latency quantiles, batch rows, KV-cache peak and (Linux) the
        process's peak RSS; counters keep counting."""
        m = sched.metrics
        with m.lock:
            for d in (m.ttft, m.e2e, m.itl, m.batch_rows):
                d.clear()
        m.kv_cache_peak_bytes = m.kv_cache_bytes
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS
        except OSError:
            pass
        return {"kv_cache_peak_bytes": sched.metrics.kv_cache_peak_bytes,
                "process_peak_rss_bytes": _proc_status("VmHWM"), "process_cpu_s": time.process_time()}

    @app.post("/generate")
    async def generate(request: Request):
        sched.metrics.count("requests")
        body = await request.body()
        try:
            tokens, params, stream = sched.parse(body)
            req = sched.submit(tokens, params, asyncio.get_running_loop())
        except RequestError as err:
            headers = {"Retry-After": "1"} if err.status == 503 else {}
            return error(err.status, err.message, **headers)
        grace = config.request_timeout_s + 30.0  # the worker enforces the timeout; this guards a dead worker
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace") if byte_level else None

        def piece(t: int) -> str:
            return decoder.decode(bytes([t])) if decoder is not None else tok.decode([t])

        async def next_event():
            return await asyncio.wait_for(req.events.get(), timeout=max(1.0, req.deadline + grace - time.perf_counter()))

        if not stream:
            out, ttft = [], None
            try:
                while True:
                    ev = await next_event()
                    if ev[0] == "token":
                        out.append(ev[1])
                        ttft = ev[2] if ttft is None else ttft
                    elif ev[0] == "done":
                        sched.metrics.count("http_200")
                        return {"text": tok.decode(out), "tokens": len(out), "ttft_s": ttft, "total_s": ev[2],
                                "finish_reason": ev[1], "prompt_tokens": len(tokens)}
                    else:
                        return error(ev[1], ev[2])
            except TimeoutError:
                sched.cancel(req)
                return error(504, "no answer from the generation worker in time")
            except asyncio.CancelledError:  # client went away
                sched.cancel(req)
                raise

        async def lines() -> AsyncIterator[bytes]:
            out, ttft = [], None
            try:
                while True:
                    ev = await next_event()
                    if ev[0] == "token":
                        ttft = ev[2] if ttft is None else ttft
                        yield (json.dumps({"token": piece(ev[1]), "token_id": ev[1], "index": len(out),
                                           "t_s": ev[2]}) + "\n").encode()
                        out.append(ev[1])
                    elif ev[0] == "done":
                        tail = decoder.decode(b"", final=True) if decoder is not None else ""
                        yield (json.dumps({"done": True, "text": tok.decode(out), "tokens": len(out),
                                           "ttft_s": ttft, "total_s": ev[2], "finish_reason": ev[1],
                                           "prompt_tokens": len(tokens), "tail": tail}) + "\n").encode()
                        return
                    else:
                        sched.metrics.count(f"stream_error_{ev[1]}")
                        yield (json.dumps({"done": True, "error": ev[2], "status": ev[1],
                                           "tokens": len(out)}) + "\n").encode()
                        return
            finally:  # client gone or finished: the worker drops the row if still running
                sched.cancel(req)

        sched.metrics.count("http_200")
        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return app


@dataclass
class ServerHandle:
    """A uvicorn server running in a background thread (tests, load tests)."""

    url: str
    server: object
    thread: threading.Thread

    def stop(self, timeout: float = 15.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=timeout)


def _check_loopback(host: str) -> None:
    import ipaddress

    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as err:
        raise ValueError(f"cannot resolve host {host!r}: {err}") from None
    if not all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos):
        raise ValueError(f"host {host!r} is not a loopback address")


def start_server(app, host: str = "127.0.0.1", port: int = 0, *, ready_timeout: float = 60.0) -> ServerHandle:
    """Serve `app` on host:port (port 0: a free port) in a daemon thread; waits until ready.

    Only loopback hosts are accepted here (this helper is for tests and load tests).
    """
    import uvicorn

    _check_loopback(host)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    actual = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    t0 = time.perf_counter()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server thread exited during start-up")
        if time.perf_counter() - t0 > ready_timeout:
            server.should_exit = True
            raise RuntimeError(f"the server did not start within {ready_timeout} s")
        time.sleep(0.02)
    url = f"http://[{host}]:{actual}" if ":" in host else f"http://{host}:{actual}"
    return ServerHandle(url=url, server=server, thread=thread)


def serve(app, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run `app` in the foreground until interrupted (python -m efficiency serve)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info")


# ---------------------------------------------------------------------- models
DEFAULT_PRESET = "small"
DEFAULT_BUDGET_S = 90.0
DEFAULT_MAX_STEPS = 3000


def cache_dir() -> Path:
    """Where the default model is cached: $SCIML_CACHE, else ~/.cache/sciml-workbench."""
    env = os.environ.get("SCIML_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "sciml-workbench"


def train_default_model(budget_s: float = DEFAULT_BUDGET_S, max_steps: int = DEFAULT_MAX_STEPS, *,
                        seed: int = 0, progress: bool = True) -> tuple[GPT, dict]:
    """Train the "small" preset on the standard-library corpus for at most `budget_s` seconds.

    AdamW at 3e-3 with a 50-step warm-up and a cosine decay over the time budget (so the
    schedule ends when the time does, whatever the machine's speed), batch 16.
    """
    from tqdm.auto import tqdm

    if not budget_s > 0 or max_steps < 1:
        raise ValueError(f"budget_s and max_steps must be positive, got {budget_s}, {max_steps}")
    corpus = load_corpus()
    train, val = train_val_split(corpus.tokens)
    cfg = GPT_PRESETS[DEFAULT_PRESET]
    with seeded(seed):  # the initialisation draws from torch's global generator; its state is restored
        model = GPT(cfg)
    base_lr = 3e-3
    step_fn = make_train_step(model, lr=base_lr)
    gen = torch.Generator().manual_seed(seed + 1)
    t0 = time.perf_counter()
    bar = tqdm(total=max_steps, desc="training the default model", disable=not progress, leave=False)
    step, loss = 0, float("nan")
    while step < max_steps:
        frac = (time.perf_counter() - t0) / budget_s
        if frac >= 1:
            break
        lr = base_lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * frac))
        for g in step_fn.optimizer.param_groups:
            g["lr"] = lr
        x, y = get_batch(train, 16, cfg.context, gen)
        loss_t = step_fn(x, y)
        step += 1
        if step % 25 == 0:
            loss = float(loss_t)
            bar.set_postfix(loss=f"{loss:.3f}")
        bar.update(1)
    bar.close()
    wall = time.perf_counter() - t0
    model.eval()
    val_loss = evaluate_loss(model, val, batch_size=16, max_batches=4)
    info = {"preset": DEFAULT_PRESET, "steps": step, "train_time_s": wall, "val_loss_nats": val_loss,
            "corpus": corpus.describe(), "seed": seed}
    return model, info


def default_model(*, progress: bool = True, budget_s: float = DEFAULT_BUDGET_S) -> tuple[GPT, dict]:
    """The cached default model, trained (and cached atomically) on first use."""
    if _is_cached():
        return _load_cached()
    path = _default_path()
    model, info = train_default_model(budget_s, progress=progress)
    save_checkpoint(model, path, extra={"default_model": info})
    return model, {"checkpoint": str(path), **info}


def load_model(checkpoint: str | Path | None = None, *, int8: bool = False, progress: bool = True) -> tuple[GPT, dict]:
    """A GPT for serving: from `checkpoint` (a save_checkpoint folder) or the default model;
    `int8` swaps its Linear layers for INT8 weight-only ones (efficiency.quantize)."""
    if checkpoint is None:
        model, info = default_model(progress=progress)
    else:
        meta = read_checkpoint_meta(checkpoint)
        model = load_checkpoint(checkpoint)
        info = {"checkpoint": str(checkpoint), **meta.get("default_model", {})}
    if int8:
        from efficiency.quantize import quantize_gpt

        model = quantize_gpt(model, "weight-only")
        info["int8"] = "weight-only"
    return model.eval(), info


def _default_path() -> Path:
    return cache_dir() / "efficiency" / f"default-gpt-{DEFAULT_PRESET}"


def _is_cached() -> bool:
    p = _default_path()
    return (p / "config.json").is_file() and (p / "model.pt").is_file()


def _load_cached() -> tuple[GPT, dict]:
    p = _default_path()
    meta = read_checkpoint_meta(p)
    return load_checkpoint(p), {"checkpoint": str(p), **meta.get("default_model", {})}
