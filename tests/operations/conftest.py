"""What an operator sees of a running deployment: `GET /metrics` parsed as Prometheus parses it, and
the processes' log lines."""

from __future__ import annotations

import json

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import PaperProcess
from tests.support import wait_until

# Processes report to Redis twice a second in these tests, so a scrape sees them within a second.
FAST_REPORTS = {"METRICS_PUSH_INTERVAL": "0.5"}


class Scrape:
    """One /metrics answer: every sample, parsed with prometheus_client's own text parser (so the
    answer is valid Prometheus text format), with helpers to pick samples by name and labels."""

    def __init__(self, text: str):
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = [s for f in self.families.values() for s in f.samples]

    def total(self, name: str, **labels: str) -> float:
        return sum(
            s.value for s in self.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def processes(self, role: str) -> list[str]:
        return [
            s.labels["process"] for s in self.samples if s.name == "spotgate_process_up" and s.labels["role"] == role
        ]


def scrape(web, token: str | None = None) -> Scrape:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = requests.get(web.url + "/metrics", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain"), answer.headers
    return Scrape(answer.text)


def scrape_until(web, done, timeout: float, what: str) -> Scrape:
    """Scrape until `done(scrape)`: the other processes' reports arrive every METRICS_PUSH_INTERVAL, and
    only a scrape can see them (as Prometheus does)."""

    def seen() -> Scrape | None:
        result = scrape(web)
        return result if done(result) else None

    return wait_until(seen, timeout, f"{what} (in /metrics)", interval=0.2)


def json_lines(text: str) -> list[dict]:
    """Every line of a LOG_FORMAT=json log as an object; a line that is not JSON fails the test."""
    lines = []
    for line in text.splitlines():
        if line.strip():
            try:
                lines.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"not a JSON log line: {line!r}") from None
    return lines


@pytest.fixture(scope="module")
def paper():
    px = PaperProcess(seed=21)
    yield px
    px.stop()
