"""GET /metrics: Prometheus text 0.0.4, checked by a strict parser of ours and by promtool."""

from __future__ import annotations

import math
import re
import shutil
import subprocess

import pytest

from reynard import exposition, metrics, stats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


class ExpositionError(AssertionError):
    pass


def _labels(text: str, line: str) -> dict[str, str]:
    """Parse `a="x",b="y"` (escapes \\\\, \\", \\n only) into a dict."""
    labels: dict[str, str] = {}
    i = 0
    while i < len(text):
        m = _LABEL.match(text, i)
        if not m or text[m.end() : m.end() + 2] != '="':
            raise ExpositionError(f"bad label at {text[i:]!r} in {line!r}")
        name, i = m.group(), m.end() + 2
        value = []
        while True:
            if i >= len(text):
                raise ExpositionError(f"unterminated label value in {line!r}")
            ch = text[i]
            if ch == "\\":
                nxt = text[i + 1 : i + 2]
                if nxt not in _ESCAPES:
                    raise ExpositionError(f"bad escape \\{nxt} in {line!r}")
                value.append(_ESCAPES[nxt])
                i += 2
            elif ch == '"':
                i += 1
                break
            elif ch == "\n":
                raise ExpositionError(f"raw newline in a label value in {line!r}")
            else:
                value.append(ch)
                i += 1
        if name in labels:
            raise ExpositionError(f"label {name} twice in {line!r}")
        labels[name] = "".join(value)
        if i < len(text):
            if text[i] != ",":
                raise ExpositionError(f"expected ',' after a label in {line!r}")
            i += 1
    return labels


def _value(text: str, line: str) -> float:
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
        raise ExpositionError(f"bad value {text!r} in {line!r}")
    return float(text)


def _family_of(sample: str, families: dict) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        base = sample.removesuffix(suffix)
        if base != sample and families.get(base, {}).get("type") == "histogram":
            return base
    return sample


def parse(text: str) -> dict[str, dict]:
    """Strictly parse an exposition: {family: {type, help, samples: [(name, labels, value)]}}.

    Checks the line grammar, HELP and TYPE once each and before the family's samples, samples of
    a family kept together, no duplicate series, counters named *_total, and for histograms:
    buckets per series in rising `le`, cumulative, ending in +Inf equal to _count, plus _sum.
    """
    if not text.endswith("\n"):
        raise ExpositionError("the exposition must end with a newline")
    families: dict[str, dict] = {}
    closed: set[str] = set()
    current = None
    seen: set[tuple] = set()
    for line in text[:-1].split("\n"):
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                kind, name = parts[1], parts[2]
                if not _NAME.fullmatch(name):
                    raise ExpositionError(f"bad metric name in {line!r}")
                fam = families.setdefault(name, {"type": None, "help": None, "samples": []})
                if fam["samples"] or name in closed:
                    raise ExpositionError(f"{kind} for {name} after its samples")
                key = kind.lower()
                if fam[key] is not None:
                    raise ExpositionError(f"{kind} for {name} given twice")
                rest = parts[3] if len(parts) == 4 else ""
                if kind == "TYPE" and rest not in _TYPES:
                    raise ExpositionError(f"unknown type in {line!r}")
                fam[key] = rest
                if current is not None and current != name:
                    closed.add(current)
                current = name
            continue
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?", line)
        if not m:
            raise ExpositionError(f"not a sample line: {line!r}")
        name, labels = m.group(1), _labels(m.group(2) or "", line)
        value = _value(m.group(3), line)
        family = _family_of(name, families)
        fam = families.get(family)
        if fam is None or fam["type"] is None or fam["help"] is None:
            raise ExpositionError(f"sample {name} before its HELP and TYPE")
        if family in closed:
            raise ExpositionError(f"samples of {family} are not kept together")
        if current != family:
            if current is not None:
                closed.add(current)
            current = family
        series = (name, tuple(sorted(labels.items())))
        if series in seen:
            raise ExpositionError(f"duplicate series {series}")
        seen.add(series)
        fam["samples"].append((name, labels, value))
    for name, fam in families.items():
        if fam["type"] == "counter" and not name.endswith("_total"):
            raise ExpositionError(f"counter {name} is not named *_total")
        if fam["type"] == "histogram":
            _check_histogram(name, fam["samples"])
    return families


def _check_histogram(name: str, samples: list) -> None:
    series: dict[tuple, dict] = {}
    for sample, labels, value in samples:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        entry = series.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if sample == f"{name}_bucket":
            if "le" not in labels:
                raise ExpositionError(f"{name}_bucket without le")
            entry["buckets"].append((_value(labels["le"], sample), value))
        elif sample in (f"{name}_sum", f"{name}_count"):
            entry[sample.rsplit("_", 1)[1]] = value
        else:
            raise ExpositionError(f"{sample} does not belong to histogram {name}")
    for labels, entry in series.items():
        bounds = [b for b, _ in entry["buckets"]]
        counts = [c for _, c in entry["buckets"]]
        if not bounds or bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ExpositionError(f"{name}{labels}: buckets not in rising le order")
        if not math.isinf(bounds[-1]):
            raise ExpositionError(f"{name}{labels}: the last bucket is not +Inf")
        if any(b > a for a, b in zip(counts[1:], counts, strict=False)):
            raise ExpositionError(f"{name}{labels}: buckets are not cumulative")
        if entry["count"] is None or entry["sum"] is None:
            raise ExpositionError(f"{name}{labels}: _count or _sum missing")
        if counts[-1] != entry["count"]:
            raise ExpositionError(f"{name}{labels}: +Inf bucket {counts[-1]} != _count")


def value_of(families: dict, name: str, **labels: str) -> float:
    family = families[_family_of(name, families)]
    for sample, got, value in family["samples"]:
        if sample == name and all(got.get(k) == v for k, v in labels.items()):
            return value
    return 0.0


async def scrape(client) -> dict[str, dict]:
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == CONTENT_TYPE
    return parse(await resp.text())


def promtool(text: str) -> subprocess.CompletedProcess:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is not installed (Debian package prometheus); .ci/run installs it")
    return subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )


# ---- the parser itself must be able to say no ---------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "x_total 1\n",  # no HELP/TYPE
        "# HELP x_total h\n# TYPE x_total counter\nx_total 1",  # no final newline
        "# HELP x h\n# TYPE x counter\nx 1\n",  # counter without _total
        '# HELP x h\n# TYPE x gauge\nx{a="b\\q"} 1\n',  # bad escape
        '# HELP x h\n# TYPE x gauge\nx{a="b"} one\n',  # bad value
        '# HELP x h\n# TYPE x gauge\nx 1\n# HELP y h\n# TYPE y gauge\ny 1\nx{a="1"} 2\n',
        "# HELP x h\n# TYPE x gauge\nx 1\nx 2\n",  # duplicate series
        "# HELP h h\n# TYPE h histogram\n"
        'h_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',  # not cumulative
        "# HELP h h\n# TYPE h histogram\n"
        'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n',  # +Inf != count
        '# HELP h h\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',  # no +Inf
    ],
)
def test_strict_parser_rejects_broken_expositions(text):
    with pytest.raises(ExpositionError):
        parse(text)


# ---- the real endpoint ----------------------------------------------------------------------
async def test_metrics_is_text_0_0_4_without_auth_and_parses_strictly(client):
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == CONTENT_TYPE
    families = parse(await resp.text())
    for name in (
        "reynard_http_requests_total",
        "reynard_http_request_duration_seconds",
        "reynard_db_pool_reader_waits_total",
        "reynard_db_pool_writer_waits_total",
        "reynard_db_pool_reads_total",
        "reynard_db_pool_writes_total",
        "reynard_db_pool_write_batches_total",
        "reynard_db_pool_queued_writes",
        "reynard_db_bytes",
        "reynard_db_wal_bytes",
        "reynard_db_pages",
        "reynard_db_freelist_pages",
        "reynard_users",
        "reynard_sessions_active",
        "reynard_cache_entries",
        "reynard_tasks",
        "reynard_uptime_seconds",
        "reynard_build_info",
        "process_cpu_seconds_total",
    ):
        assert name in families, name
    assert families["reynard_http_request_duration_seconds"]["type"] == "histogram"
    statuses = {labels["status"] for _, labels, _ in families["reynard_tasks"]["samples"]}
    assert statuses == set(stats.TASK_STATUSES)
    assert value_of(families, "reynard_db_bytes") > 0
    assert value_of(families, "reynard_db_pages") > 0


async def test_request_counters_and_histogram_counts_move_with_requests(client):
    before = await scrape(client)
    for _ in range(5):
        assert (await client.get("/api/health/live")).status == 200
    for _ in range(2):
        assert (await client.get("/api/health/simple/")).status == 200  # same route label
    after = await scrape(client)

    def delta(name, **labels):
        return value_of(after, name, **labels) - value_of(before, name, **labels)

    live = {"route": "/api/health/live", "method": "GET"}
    simple = {"route": "/api/health/simple", "method": "GET"}
    assert delta("reynard_http_requests_total", status="200", **live) == 5
    assert delta("reynard_http_requests_total", status="200", **simple) == 2
    hist = "reynard_http_request_duration_seconds"
    assert delta(f"{hist}_count", **live) == 5
    assert delta(f"{hist}_bucket", le="+Inf", **live) == 5
    assert delta(f"{hist}_count", **simple) == 2
    assert value_of(after, f"{hist}_sum", **live) > 0
    # The first scrape was itself a request, counted once it had finished.
    assert value_of(after, "reynard_http_requests_total", route="/metrics", status="200") >= 1


async def test_histogram_count_equals_requests_per_route_and_method(client):
    for path in ("/api/health/live", "/api/health/simple", "/api/system", "/nope"):
        await client.get(path)
    families = await scrape(client)
    requests: dict[tuple, float] = {}
    for _, labels, value in families["reynard_http_requests_total"]["samples"]:
        key = (labels["route"], labels["method"])
        requests[key] = requests.get(key, 0) + value
    hist = "reynard_http_request_duration_seconds"
    counts = {
        (labels["route"], labels["method"]): value
        for name, labels, value in families[hist]["samples"]
        if name == f"{hist}_count"
    }
    assert counts == requests
    assert len(counts) >= 4


async def test_unmatched_paths_and_odd_methods_share_one_label_each(client):
    for i in range(12):
        assert (await client.get(f"/random/{i}/path")).status == 404
    await client.request("PROPFIND", "/coffee")
    families = await scrape(client)
    routes = {
        labels["route"] for _, labels, _ in families["reynard_http_requests_total"]["samples"]
    }
    assert not any(route.startswith("/random") or route == "/coffee" for route in routes)
    assert (
        value_of(
            families, "reynard_http_requests_total", route="unmatched", method="GET", status="404"
        )
        == 12
    )
    methods = {
        labels["method"] for _, labels, _ in families["reynard_http_requests_total"]["samples"]
    }
    assert "PROPFIND" not in methods
    assert "OTHER" in methods


async def test_gauges_count_users_sessions_and_tasks(client, make_user):
    await make_user()
    await make_user(admin=True)
    families = await scrape(client)
    assert value_of(families, "reynard_users") == 2
    assert value_of(families, "reynard_sessions_active") == 2
    assert value_of(families, "reynard_tasks", status="pending") == 0


async def test_promtool_accepts_the_real_exposition(client, make_user):
    token, _ = await make_user(admin=True)
    await client.get("/api/stats", headers={"Authorization": f"Bearer {token}"})
    await client.get("/no/such/thing")
    await client.post("/api/health/live")  # 405
    resp = await client.get("/metrics")
    text = await resp.text()
    parse(text)
    result = promtool(text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stdout


def test_label_values_are_escaped_and_survive_a_round_trip():
    registry = metrics.Registry(0.0)
    odd = 'a"b\\c\nd'
    registry.observe(odd, "GET", 200, 0.003)
    registry.observe(odd, "GET", 500, 42.0)  # beyond the last finite bucket
    counts = stats.Counts(1, 0, 0, dict.fromkeys(stats.TASK_STATUSES, 0), 1, 0, 4096, 4096, 0)
    pool = {
        "reads": 0,
        "fast_reads": 0,
        "reader_waits": 0,
        "writes": 0,
        "write_batches": 0,
        "writer_waits": 0,
        "queued_writes": 0,
        "readers": 1,
        "readers_in_use": 0,
    }
    text = exposition.render(registry, counts, pool, uptime=1.0, started_at=0.0, version='1"x')
    assert 'route="a\\"b\\\\c\\nd"' in text
    families = parse(text)
    hist = "reynard_http_request_duration_seconds"
    assert value_of(families, f"{hist}_count", route=odd) == 2
    assert value_of(families, f"{hist}_bucket", route=odd, le="0.005") == 1
    assert value_of(families, f"{hist}_bucket", route=odd, le="10.0") == 1
    assert value_of(families, f"{hist}_bucket", route=odd, le="+Inf") == 2
    result = promtool(text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_bucket_quantile_interpolates_inside_a_bucket():
    buckets = [0] * (len(metrics.BUCKETS) + 1)
    buckets[1] = 10  # ten requests in (0.001, 0.0025]
    assert metrics.bucket_quantile(0.5, buckets) == pytest.approx(0.00175)
    buckets[-1] = 10  # ten more beyond 10 s
    assert metrics.bucket_quantile(0.99, buckets) == metrics.BUCKETS[-1]
