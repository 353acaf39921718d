"""Task names are written once (services/contract/tasks.py TaskName): the worker registers exactly
those, and beat schedules only registered ones — a task renamed on one side only fails here, not as
a message no worker takes."""

from __future__ import annotations

import importlib

from config import Settings
from services.contract.tasks import TaskName
from workers.celery_app import app, celery_config


def registered() -> set[str]:
    for module in app.conf.include:
        importlib.import_module(module)
    return {name for name in app.tasks if not name.startswith("celery.")}


def test_the_worker_registers_exactly_the_contracts_task_names():
    assert registered() == TaskName.all()


def test_beats_schedule_names_only_registered_tasks():
    schedule = celery_config(Settings.from_env({"SPOTGATE_MODE": "paper"}))["beat_schedule"]
    scheduled = {entry["task"] for entry in schedule.values()}
    assert scheduled and scheduled <= registered()
