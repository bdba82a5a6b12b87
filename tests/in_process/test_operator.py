"""What the person running a sync sees: progress while it runs, a summary at its end."""

from __future__ import annotations

import json
import logging
import os
import random
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from singer_sdk import metrics

from tap_oktopost.sync import progress
from tap_oktopost.sync.progress import TableProgress
from tests.conftest import (
    TAP,
    TapRun,
    config_for,
    csv_text,
    export_with,
    sync_in_process,
)
from tests.stand_ins.oktopost_stand_in import OktopostStandIn, StandInExport

SUMMARY = re.compile(r"Sync summary: export (\S+): (.*)$")


def summary_of(run: TapRun) -> dict[str, str]:
    return {
        found[1]: found[2]
        for line in run.stderr.splitlines()
        if (found := SUMMARY.search(line))
    }


def rows(count: int, width: int = 3) -> str:
    header = ["Row Key", *(f"Column {n}" for n in range(width - 1))]
    return csv_text(
        [
            header,
            *(
                [f"k{n}", *(f"value {n}" for _ in range(width - 1))]
                for n in range(count)
            ),
        ]
    )


@pytest.mark.parametrize("seed", range(6))
def test_the_summary_says_per_export_the_run_and_rows_or_why_not(
    stand_in: OktopostStandIn, seed: int
) -> None:
    rng = random.Random(seed)  # noqa: S311 - test data
    expected: dict[str, str] = {}
    counts: dict[str, dict[str, int]] = {}
    for number in range(rng.randint(3, 6)):
        export_id = f"0320000000{number + 1:05d}"
        kind = rng.choice(["loaded", "loaded", "never ran", "damaged"])
        if kind == "never ran":
            stand_in.add_export(StandInExport(id=export_id))
            continue
        tables = {
            word: rng.randint(1, 30)
            for word in rng.sample(["Leads", "Posts", "Reach"], 2)
        }
        members: dict[str, str | bytes] = {
            f"{word}.csv": rows(count) for word, count in tables.items()
        }
        if kind == "damaged":  # a field past max_csv_field_characters
            members[f"{next(iter(tables))}.csv"] = f"Row Key\nk{'x' * 5000}\n"
        stand_in.add_export(export_with(export_id, members))
        counts[export_id] = {word.lower(): count for word, count in tables.items()}
        expected[export_id] = kind
    run = sync_in_process(config_for(stand_in, max_csv_field_characters=1000))

    summary = summary_of(run)
    assert set(summary) == {e.id for e in stand_in._exports.values()}
    for export_id, said in summary.items():
        kind = expected.get(export_id, "never ran")
        if kind == "never ran":
            assert said == "has not run yet"
        elif kind == "loaded":
            assert said == (
                "run 2026-11-27T10:00:00+00:00 loaded; rows sent: "
                + ", ".join(f"{t} {n}" for t, n in sorted(counts[export_id].items()))
            )
        else:
            assert said.startswith("failed (its ERROR is above), its bookmark stays")
    assert run.returncode == (1 if "damaged" in expected.values() else 0)

    again = sync_in_process(
        config_for(stand_in, max_csv_field_characters=1000), state=run.final_state
    )
    for export_id, said in summary_of(again).items():
        if expected.get(export_id) == "loaded":
            assert said == "run 2026-11-27T10:00:00+00:00 was loaded before"


def test_progress_counts_what_went_out_and_says_it_at_its_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = [0.0]
    counter = metrics.Counter(metrics.Metric.RECORD_COUNT, log_interval=10**9)
    logger = logging.getLogger("tests.progress")
    table = TableProgress(logger, "posts", "032000000000001", counter, lambda: clock[0])
    with caplog.at_level(logging.INFO, logger="tests.progress"):
        for second in range(1, 95):
            clock[0] = float(second)
            table.sent(1000)
        table.sent(5, counted=True)

    assert counter.value == 94_000
    assert table.rows == 94_005
    assert caplog.messages == [
        f"Stream posts, export 032000000000001: {n} rows sent so far (1000 rows/s)"
        for n in (30_000, 60_000, 90_000)
    ]


@pytest.mark.parametrize("lean", [True, False])
def test_a_long_table_says_its_progress_as_its_rows_go_out(
    stand_in: OktopostStandIn, monkeypatch: pytest.MonkeyPatch, lean: bool
) -> None:
    monkeypatch.setattr(progress, "PROGRESS_SECONDS", 0.0)
    stand_in.add_export(export_with("032000000000001", {"Posts.csv": rows(60_000, 6)}))
    settings: dict[str, Any] = {}
    if not lean:  # a stream map: records go through the SDK one by one
        settings["stream_maps"] = {"posts": {"extra": "'x'"}}
    run = sync_in_process(config_for(stand_in, **settings))

    assert run.returncode == 0
    said = [
        int(found[1])
        for found in re.finditer(
            r"Stream posts, export 032000000000001: (\d+) rows sent so far", run.stderr
        )
    ]
    assert len(said) >= 3
    assert said == sorted(said)
    assert said[-1] == 60_000
    counted = [
        json.loads(found[1]) for found in re.finditer(r"METRIC: (\{.*\})", run.stderr)
    ]
    posts = [
        point["value"]
        for point in counted
        if point["metric"] == "record_count" and point["tags"]["stream"] == "posts"
    ]
    assert sum(posts) == 60_000


@pytest.mark.slow
def test_after_sigterm_the_record_count_is_what_was_sent(
    stand_in: OktopostStandIn, tmp_path: Path
) -> None:
    stand_in.add_export(export_with("032000000000001", {"Posts.csv": rows(300_000, 6)}))
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config_for(stand_in)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_OKTOPOST_")}
    process = subprocess.Popen(
        [*TAP, "--config", str(config_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert process.stdout is not None
    sent = 0
    for line in process.stdout:
        message = json.loads(line)
        if message["type"] == "RECORD" and message["stream"] == "posts":
            sent += 1
            if sent == 50_000:
                process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 143
    assert 50_000 <= sent < 300_000
    points = [
        json.loads(line.split("METRIC: ", 1)[1])
        for line in stderr.splitlines()
        if "METRIC: " in line
    ]
    counts = [
        point["value"]
        for point in points
        if point["metric"] == "record_count" and point["tags"]["stream"] == "posts"
    ]
    assert sum(counts) == sent
    assert "unhandled" not in stderr
    assert "Traceback" not in stderr


def metric_points(run: TapRun) -> list[dict[str, Any]]:
    return [
        json.loads(line.split("METRIC: ", 1)[1])
        for line in run.stderr.splitlines()
        if "METRIC: " in line
    ]


@pytest.mark.parametrize("seed", range(4))
def test_metrics_name_the_tables_each_run_sent_and_no_others(
    stand_in: OktopostStandIn, seed: int
) -> None:
    """Every table is synced once per export run: only those the run holds say so."""
    rng = random.Random(seed)  # noqa: S311 - test data
    sent: dict[tuple[str, str], int] = {}
    words = ["Leads", "Posts", "Reach", "Clicks", "Shares"]
    for number in range(rng.randint(2, 5)):
        export_id = f"0320000000{number + 1:05d}"
        tables = {word: rng.randint(0, 9) for word in rng.sample(words, 2)}
        members: dict[str, str | bytes] = {
            f"{word}.csv": rows(count) for word, count in tables.items()
        }
        stand_in.add_export(export_with(export_id, members))
        sent.update({(word.lower(), export_id): n for word, n in tables.items()})
    run = sync_in_process(config_for(stand_in))

    assert run.returncode == 0
    counted = {
        (point["tags"]["stream"], point["tags"]["context"]["export_id"]): point["value"]
        for point in metric_points(run)
        if point["metric"] == "record_count" and "export_id" in point["tags"]["context"]
    }
    timed = {
        (point["tags"]["stream"], point["tags"]["context"]["export_id"])
        for point in metric_points(run)
        if point["metric"] == "sync_duration"
        and "export_id" in point["tags"].get("context", {})
    }
    assert counted == sent
    assert timed == set(sent)
