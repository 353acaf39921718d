"""The whole signed path: paper exchange, real Redis, a real Celery worker, the web process."""

from __future__ import annotations

import pytest

from tests.processes import PaperProcess, WebProcess, WorkerProcess
from tests.support import delete_prefix, new_prefix


class Stack:
    """Paper exchange, worker and web process on one key prefix of their own. `stop()` stops every
    process and deletes the prefix, also when starting failed half-way."""

    def __init__(
        self,
        redis_url: str,
        paper_env: dict | None = None,
        worker_env: dict | None = None,
        web_env: dict | None = None,
        concurrency: int = 2,
        seed: int = 13,
    ):
        self.redis_url = redis_url
        self.prefix = new_prefix()
        self.worker_env = worker_env or {}
        self.concurrency = concurrency
        self.paper = self.worker = self.web = None
        try:
            self.paper = PaperProcess(seed=seed, **(paper_env or {}))
            self.worker = WorkerProcess(
                self.paper.url, redis_url, self.prefix, concurrency=concurrency, **self.worker_env
            )
            self.web = WebProcess(self.paper.url, redis_url, self.prefix, **(web_env or {}))
        except BaseException:
            self.stop()
            raise

    def restart_worker(self) -> None:
        """A new worker in place of the current one (stopped first, if it still runs)."""
        self.worker.stop()
        self.worker = WorkerProcess(
            self.paper.url, self.redis_url, self.prefix, concurrency=self.concurrency, **self.worker_env
        )

    def post(self, path: str, body: dict, role: str = "trader", headers: dict | None = None):
        return self.web.http.post(
            self.web.url + path,
            json=body,
            timeout=30,
            headers={"Authorization": f"Bearer {self.web.token(role)}", **(headers or {})},
        )

    def delete(self, path: str, role: str = "trader", **params):
        return self.web.http.delete(
            self.web.url + path, params=params, timeout=30, headers={"Authorization": f"Bearer {self.web.token(role)}"}
        )

    def stop(self) -> None:
        try:
            for part in (self.web, self.worker, self.paper):
                if part is not None:
                    part.discard()  # the prefix is deleted next: nothing is looked at any more
        finally:
            delete_prefix(self.redis_url, self.prefix)


@pytest.fixture(scope="module")
def stack(redis_url):
    s = Stack(redis_url)
    yield s
    s.stop()
