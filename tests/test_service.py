"""The generation service on a free loopback port: answers, batching, bad input, limits."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch

from efficiency.data import ByteTokenizer
from efficiency.generate import SamplingParams, generate
from efficiency.gpt import GPT, GPTConfig
from efficiency.service import ServiceConfig, create_app, start_server

CFG = GPTConfig(context=64, n_layer=2, n_head=2, d_model=32)
TOK = ByteTokenizer()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # the server, its scheduler and the clients share 2 busy cores; one intra-op thread
    # avoids OpenMP barrier stalls (see tests/test_generate.py)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_model(seed: int = 0) -> GPT:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        # float64 so batched and one-at-a-time greedy decoding agree exactly (only rounding
        # near 1e-16 differs, far below the gaps between a random model's top logits)
        return GPT(CFG).double().eval()


class SlowGPT(GPT):
    """Sleeps 30 ms per forward: makes queueing and timeouts deterministic."""

    def forward(self, *args, **kwargs):
        time.sleep(0.03)
        return super().forward(*args, **kwargs)


@pytest.fixture(scope="module")
def server():
    model = tiny_model()
    handle = start_server(create_app(model, ServiceConfig(max_batch_size=4, max_queue=16)), "127.0.0.1", 0)
    yield handle, model
    handle.stop()


@pytest.fixture(scope="module")
def slow_server():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = SlowGPT(CFG).eval()
    cfg = ServiceConfig(max_batch_size=1, max_queue=1, request_timeout_s=1.5)
    handle = start_server(create_app(model, cfg), "127.0.0.1", 0)
    yield handle
    handle.stop()


_CLIENT: list[httpx.Client] = []


def post(url, body, **kw):
    # one pooled client: a fresh httpx.Client per call builds an SSL context (tens of ms of
    # CPU), which on a busy machine spreads "simultaneous" requests apart
    if not _CLIENT:
        _CLIENT.append(httpx.Client(timeout=60, trust_env=False, limits=httpx.Limits(max_connections=20)))
    return _CLIENT[0].post(url + "/generate", json=body, **kw)


@pytest.fixture(autouse=True, scope="module")
def close_client():
    yield
    while _CLIENT:
        _CLIENT.pop().close()


def test_server_listens_on_loopback_and_reports_health(server):
    handle, _ = server
    assert handle.url.startswith("http://127.0.0.1:")
    r = httpx.get(handle.url + "/health", timeout=10, trust_env=False)
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_concurrent_requests_are_batched_and_match_one_at_a_time_decoding(server):
    handle, model = server
    prompts = ["def f(x):", "import os", "class A", "x = [1, 2", "for i in range(10):", "#", "while", "ab"]
    bodies = [{"prompt": p, "max_new_tokens": 10, "temperature": 0} for p in prompts]
    with ThreadPoolExecutor(len(bodies)) as ex:
        answers = list(ex.map(lambda b: post(handle.url, b), bodies))
    assert [a.status_code for a in answers] == [200] * len(bodies)
    for p, a in zip(prompts, answers, strict=True):
        want = generate(model, [TOK.encode(p)], SamplingParams(max_new_tokens=10, temperature=0.0))[0].tokens
        got = a.json()
        assert got["text"] == TOK.decode(want) and got["tokens"] == 10
        assert 0 < got["ttft_s"] <= got["total_s"]
    m = httpx.get(handle.url + "/metrics", timeout=10, trust_env=False).json()
    assert m["counters"]["completed"] >= len(bodies)
    assert m["mean_batch_rows"] > 1  # some steps decoded several requests together
    assert m["kv_cache_peak_bytes"] > 0 and m["e2e_s"]["p50"] > 0


def test_seeded_sampling_requests_are_reproducible(server):
    handle, _ = server
    body = {"prompt": "hello", "max_new_tokens": 8, "temperature": 0.8, "top_k": 50, "top_p": 0.95, "seed": 7}
    a, b = post(handle.url, body).json(), post(handle.url, body).json()
    assert a["text"] == b["text"]


def test_streaming_sends_one_json_line_per_token_then_a_summary(server):
    handle, model = server
    want = generate(model, [TOK.encode("stream me")], SamplingParams(max_new_tokens=6, temperature=0.0))[0].tokens
    with httpx.stream("POST", handle.url + "/generate", timeout=60, trust_env=False,
                      json={"prompt": "stream me", "max_new_tokens": 6, "temperature": 0, "stream": True}) as r:
        assert r.status_code == 200
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert [x["token_id"] for x in lines[:-1]] == want
    assert [x["index"] for x in lines[:-1]] == list(range(6))
    assert lines[-1]["done"] is True and lines[-1]["tokens"] == 6 and lines[-1]["text"] == TOK.decode(want)


@pytest.mark.parametrize(
    ("content", "status", "words"),
    [
        (b"{not json", 400, "malformed JSON"),
        (b"[1, 2]", 400, "must be an object"),
        (b"{}", 422, "'prompt' must be a string"),
        (json.dumps({"prompt": ""}).encode(), 422, "must not be empty"),
        (json.dumps({"prompt": 5}).encode(), 422, "'prompt' must be a string"),
        (json.dumps({"prompt": "hi", "max_new_tokens": "ten"}).encode(), 422, "'max_new_tokens' must be an integer"),
        (json.dumps({"prompt": "hi", "max_new_tokens": 0}).encode(), 422, "'max_new_tokens' must be in"),
        (json.dumps({"prompt": "hi", "max_new_tokens": 1000}).encode(), 422, "'max_new_tokens' must be in"),
        (json.dumps({"prompt": "hi", "temperature": -1}).encode(), 422, "'temperature'"),
        (json.dumps({"prompt": "hi", "top_p": 0}).encode(), 422, "top_p"),
        (json.dumps({"prompt": "hi", "top_k": 1.5}).encode(), 422, "'top_k' must be an integer"),
        (json.dumps({"prompt": "hi", "seed": "x"}).encode(), 422, "'seed'"),
        (json.dumps({"prompt": "hi", "stream": "yes"}).encode(), 422, "'stream'"),
        (json.dumps({"prompt": "hi", "color": "red"}).encode(), 422, "unknown field"),
        (json.dumps({"prompt": "x" * 200}).encode(), 413, "the limit is 63"),
        (json.dumps({"prompt": "x" * 20_000}).encode(), 413, "exceeds"),
        (json.dumps({"prompt": "x" * 40, "max_new_tokens": 40}).encode(), 422, "exceed the model's context"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_clear_message_and_the_server_keeps_serving(server, content, status, words):
    handle, _ = server
    r = httpx.post(handle.url + "/generate", content=content, timeout=30, trust_env=False,
                   headers={"content-type": "application/json"})
    assert r.status_code == status
    assert words in r.json()["error"]
    ok = post(handle.url, {"prompt": "still there?", "max_new_tokens": 2})
    assert ok.status_code == 200 and ok.json()["tokens"] == 2


def test_full_queue_gets_503_and_slow_requests_time_out_with_504(slow_server):
    url = slow_server.url
    # batch 1 + queue 1: of 4 simultaneous 60-token requests (>= 1.8 s each at 30 ms a step),
    # one runs, one waits, two are turned away (they only need to arrive within the 1.5 s
    # the first one holds the row); the 1.5 s timeout ends the first two.
    body = {"prompt": "abc", "max_new_tokens": 60}
    post(url, {"prompt": "warm", "max_new_tokens": 1})  # open pooled connections' code paths
    with ThreadPoolExecutor(4) as ex:
        answers = list(ex.map(lambda _: post(url, body), range(4)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [503, 503, 504, 504]
    full = next(a for a in answers if a.status_code == 503)
    assert "queue full" in full.json()["error"] and full.headers["retry-after"] == "1"
    assert "timed out" in next(a for a in answers if a.status_code == 504).json()["error"]
    again = post(url, {"prompt": "abc", "max_new_tokens": 3})  # ~0.1 s: well inside the timeout
    assert again.status_code == 200 and again.json()["tokens"] == 3
    m = httpx.get(url + "/metrics", timeout=10, trust_env=False).json()
    assert m["counters"]["rejected_queue_full"] == 2 and m["counters"]["timed_out"] == 2


def test_load_generator_reports_every_level_without_errors(server):
    from efficiency.loadtest import LoadConfig, format_table, run_loadtest

    handle, _ = server
    cfg = LoadConfig(levels=(1, 4), requests=4, max_new_tokens=4, prompt_tokens=16)
    levels = run_loadtest(handle.url, cfg, progress=False)
    assert [lv.concurrency for lv in levels] == [1, 4]
    for lv in levels:
        assert lv.errors == 0 and lv.ok == 4 and lv.tokens == 16
        assert 0 < lv.ttft_p50_s <= lv.e2e_p99_s and lv.itl_p50_s > 0 and lv.tokens_per_s > 0
        assert lv.kv_cache_peak_bytes > 0 and lv.server_peak_rss_bytes > 0
    assert "| 4 | 4 | 0 |" in format_table(levels)
    assert all(lv.server_itl_p50_s > 0 and lv.server_mean_batch_rows >= 1 and lv.server_cpu_s > 0 for lv in levels)


@pytest.mark.parametrize("url", ["http://8.8.8.8:80", "https://127.0.0.1:1", "127.0.0.1:80"])
def test_load_generator_refuses_anything_but_loopback_http(url):
    from efficiency.loadtest import check_loopback_url

    with pytest.raises(ValueError):
        check_loopback_url(url)


@pytest.mark.parametrize(
    ("argv", "words"),
    [(["serve", "--port", "70000"], "--port"),
     (["serve", "--max-batch-size", "0"], "max_batch_size"),
     (["loadtest", "--url", "http://8.8.8.8:80"], "loopback"),
     (["loadtest", "--url", "http://127.0.0.1:1", "--concurrency", "0"], "concurrency")],
)
def test_cli_rejects_bad_service_flags_with_exit_code_2(argv, words, capsys):
    from efficiency.__main__ import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("efficiency: error:") and words in err
