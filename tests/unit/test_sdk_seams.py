"""Contracts of tap_oktopost.sdk_seams: what each SDK internal the tap uses must do.

Every test names the SDK internal it pins. When a singer-sdk release changes one,
the test says which, here, before a sync breaks somewhere (`make test-sdk-next`
runs these against the next SDK).
"""

from __future__ import annotations

import ast
import copy
import inspect
import json
import random
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import BATCH_CONFIG

from tap_oktopost import sdk_seams
from tap_oktopost.sdk_seams import BaseBatchFileEncoding, BatchConfig, SeamedTap
from tap_oktopost.streams import ActiveExportStream, ExportFileStream, ExportListStream
from tap_oktopost.sync.batches import BatchFiles, check_batch_config
from tap_oktopost.tap import TapOktopost

if TYPE_CHECKING:
    from types import FrameType

SEEDS = range(8)


class Probe(SeamedTap):
    """The smallest tap on the seams, recording what the SDK hands it."""

    name = "tap-probe"
    config_jsonschema = th.PropertiesList(
        th.Property("token", th.StringType(min_length=1), required=True),
        th.Property("limit", th.IntegerType(minimum=1)),
    ).to_dict()
    validated: ClassVar[list[tuple[dict[str, Any], bool]]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.signals: list[tuple[int, FrameType | None]] = []
        super().__init__(**kwargs)

    def discover_streams(self) -> list[Stream]:
        return []

    def validate_settings(self, *, raise_errors: bool) -> list[str]:
        self.validated.append((dict(self.config), raise_errors))
        return super().validate_settings(raise_errors=raise_errors)

    def on_termination_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append((signum, frame))


@pytest.fixture(autouse=True)
def signal_handlers() -> Iterator[None]:
    """Give back pytest's handlers: a Tap installs its own as it starts."""
    kept = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    Probe.validated.clear()
    yield
    for signum, handler in kept.items():
        signal.signal(signum, handler)


def valid_config(rng: random.Random) -> dict[str, Any]:
    config: dict[str, Any] = {"token": "t" * rng.randint(1, 30)}
    if rng.random() < 0.5:
        config["limit"] = rng.randint(1, 10_000)
    return config


def invalid_config(rng: random.Random) -> tuple[dict[str, Any], str]:
    """A config the schema refuses, and the setting the refusal names."""
    config = valid_config(rng)
    kind = rng.choice(["missing", "empty", "limit"])
    if kind == "missing":
        del config["token"]
        return config, "token"
    if kind == "empty":
        config["token"] = ""
        return config, "token"
    config["limit"] = rng.choice([0, -rng.randint(1, 99), "many", 1.5])
    return config, "limit"


# -- Tap._validate_config: the one place the SDK validates the settings ----------


@pytest.mark.parametrize("seed", SEEDS)
def test_the_sdk_validates_settings_through_validate_config(seed: int) -> None:
    config = valid_config(random.Random(seed))  # noqa: S311 - test data

    Probe(config=dict(config), setup_mapper=False)

    ((seen, raise_errors),) = Probe.validated
    assert raise_errors is True
    assert config.items() <= seen.items(), (
        "singer-sdk no longer calls Tap._validate_config(raise_errors=True) with "
        "the settings loaded, as the tap starts: SeamedTap.validate_settings, "
        "which keeps setting values out of the error messages, is not called"
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_the_sdks_own_validation_refuses_what_the_schema_refuses(seed: int) -> None:
    config, setting = invalid_config(random.Random(seed))  # noqa: S311 - test data

    with pytest.raises(ConfigValidationError) as raised:
        Probe(config=dict(config), setup_mapper=False)

    assert any(setting in error for error in raised.value.errors), (
        "Tap._validate_config of singer-sdk (SeamedTap.validate_settings' default) "
        f"no longer names the setting in its errors: {raised.value.errors}"
    )


def test_validate_config_keeps_its_signature() -> None:
    parameters = inspect.signature(Tap._validate_config).parameters
    assert list(parameters) == ["self", "raise_errors"], (
        "singer-sdk changed Tap._validate_config(self, *, raise_errors), which "
        "SeamedTap overrides"
    )
    assert parameters["raise_errors"].kind is inspect.Parameter.KEYWORD_ONLY


# -- Tap._handle_termination: the SDK's SIGTERM and SIGINT handler ---------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_sdk_installs_handle_termination_for_the_signal(signum: int) -> None:
    tap = Probe(config={"token": "t"}, setup_mapper=False)

    handler = signal.getsignal(signum)
    assert callable(handler)
    handler(signum, None)

    assert tap.signals == [(signum, None)], (
        f"singer-sdk no longer handles {signal.Signals(signum).name} with "
        "Tap._handle_termination: the tap's exit code 128 + signal and its "
        "whole-message writes (SeamedTap.on_termination_signal) are bypassed"
    )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_sdks_termination_writes_the_state_then_exits_0(
    seed: int, signum: int, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    state = {
        "bookmarks": {
            f"stream_{n}": {"run": f"2026-11-{rng.randint(10, 28)}T10:00:00+00:00"}
            for n in range(rng.randint(1, 4))
        }
    }
    tap = Probe(config={"token": "t"}, state=copy.deepcopy(state), setup_mapper=False)
    capsys.readouterr()

    with pytest.raises(SystemExit) as raised:
        tap.sdk_terminate(signum, None)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [{"type": "STATE", "value": state}], (
        "Tap._handle_termination of singer-sdk (SeamedTap.sdk_terminate) no longer "
        "writes the state as one STATE message"
    )
    assert raised.value.code in (0, None), (
        "Tap._handle_termination of singer-sdk no longer exits 0: the tap turns "
        "that exit into 128 + signal"
    )


def test_handle_termination_keeps_its_signature() -> None:
    parameters = list(inspect.signature(Tap._handle_termination).parameters)
    assert parameters == ["self", "signum", "frame"], (
        "singer-sdk changed Tap._handle_termination(self, signum, frame), which "
        "SeamedTap overrides"
    )


def sdk_internals_overridden(cls: type, sdk_base: type) -> set[str]:
    """The underscore names a class of the tap defines that the SDK's classes have."""
    sdk_classes = sdk_base.__mro__
    return {
        f"{own.__name__}.{name}"
        for own in cls.__mro__
        if own.__module__.startswith("tap_oktopost.")
        and own.__module__ != sdk_seams.__name__
        for name in vars(own)
        if name.startswith("_") and not name.startswith("__") and name != "_abc_impl"
        if any(name in vars(base) for base in sdk_classes)
    }


@pytest.mark.parametrize(
    ("cls", "sdk_base"),
    [
        (TapOktopost, Tap),
        (ExportListStream, Stream),
        (ActiveExportStream, Stream),
        (ExportFileStream, Stream),
    ],
    ids=lambda cls: cls.__name__,
)
def test_no_class_of_the_tap_overrides_an_sdk_internal_but_the_seams(
    cls: type, sdk_base: type
) -> None:
    assert sdk_internals_overridden(cls, sdk_base) == set()


def private_names_used(path: Path) -> set[str]:
    """The `self._name` attributes a module's code reads or sets."""
    return {
        node.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in {"self", "cls"}
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
    }


def sdk_private_names(sdk_base: type) -> set[str]:
    """The private names the SDK's classes under a base define or set on self."""
    names: set[str] = set()
    for cls in sdk_base.__mro__:
        if cls.__module__.startswith("singer_sdk."):
            names |= {name for name in vars(cls) if name.startswith("_")}
            names |= private_names_used(Path(inspect.getfile(cls)))
    return names


@pytest.mark.parametrize(
    ("module", "sdk_base"),
    [("tap.py", Tap), ("streams.py", Stream)],
)
def test_the_taps_own_private_attributes_are_not_the_sdks(
    module: str, sdk_base: type
) -> None:
    used = private_names_used(Path(inspect.getfile(sdk_seams)).parent / module)
    assert used, "the check finds the module's own private attributes"
    clashes = used & sdk_private_names(sdk_base)
    assert clashes == set(), (
        f"{module} uses {sorted(clashes)}, private names of singer-sdk's "
        f"{sdk_base.__name__}: read or replace SDK internals in sdk_seams.py only"
    )


def test_the_override_check_sees_an_sdk_internal() -> None:
    class Sneaky(ExportListStream):
        def _write_state_message(self) -> None: ...

    assert sdk_internals_overridden(Sneaky, Stream) == set()  # a test module's class
    Sneaky.__module__ = "tap_oktopost.streams"
    assert sdk_internals_overridden(Sneaky, Stream) == {"Sneaky._write_state_message"}
    assert issubclass(TapOktopost, SeamedTap)


# -- helpers._batch.BatchConfig: the batch_config setting parsed ----------------


def batch_setting(rng: random.Random, root: Path) -> dict[str, Any]:
    setting: dict[str, Any] = {
        "encoding": {"format": "jsonl"},
        "storage": {"root": f"file://{root / f'r{rng.randint(0, 99)}'}"},
    }
    compression = rng.choice([None, "none", "gzip"])
    if compression is not None:
        setting["encoding"]["compression"] = compression
    if rng.random() < 0.5:
        setting["storage"]["prefix"] = f"p{rng.randint(0, 9)}-"
    if rng.random() < 0.7:
        setting["batch_size"] = rng.randint(1, 50_000)
    return setting


@pytest.mark.parametrize("seed", SEEDS)
def test_batch_config_reads_the_setting_the_tap_writes_files_by(
    seed: int, tmp_path: Path
) -> None:
    setting = batch_setting(random.Random(seed), tmp_path)  # noqa: S311

    parsed = BatchConfig.from_dict(setting)

    message = "singer-sdk changed helpers._batch.BatchConfig, which sync/batches reads"
    assert isinstance(parsed.encoding, BaseBatchFileEncoding), message
    assert parsed.encoding.format == "jsonl", message
    assert parsed.encoding.compression == setting["encoding"].get("compression"), (
        message
    )
    assert parsed.storage.root == setting["storage"]["root"], message
    assert parsed.storage.prefix == setting["storage"].get("prefix"), message
    assert isinstance(parsed.storage.params, dict), message
    assert parsed.batch_size == setting.get("batch_size", parsed.batch_size) >= 1, (
        message
    )
    check_batch_config(parsed)
    files = BatchFiles(parsed, "posts")
    written = list(files.write({"n": n} for n in range(3)))
    assert sum(rows for _, rows in written) == 3


def test_batch_config_is_the_class_the_sdk_hands_get_batches() -> None:
    hint = inspect.signature(Stream.get_batches).parameters["batch_config"].annotation
    assert hint in ("BatchConfig", BatchConfig), (
        "singer-sdk's Stream.get_batches no longer takes a helpers._batch.BatchConfig"
    )
    assert Stream.get_batch_config.__module__ == "singer_sdk.streams.core"


# -- batch_config: the SDK's setting, under the tap's own label ------------------


def test_batch_config_keeps_the_taps_label_and_the_sdks_schema() -> None:
    sdk_before = copy.deepcopy(BATCH_CONFIG)
    schema = copy.deepcopy(TapOktopost.config_jsonschema)

    TapOktopost.append_builtin_config(schema)

    setting = schema["properties"]["batch_config"]
    assert setting["title"] == "Batch Configuration"
    assert setting["description"] == "Configuration for BATCH message capabilities."
    sdk_setting = BATCH_CONFIG["properties"]["batch_config"]
    assert setting["properties"] == sdk_setting["properties"]
    assert sdk_before == BATCH_CONFIG, "the SDK's shared schema was changed"


def test_the_about_output_gives_the_taps_batch_label(
    capsys: pytest.CaptureFixture[str],
) -> None:
    TapOktopost.print_about(output_format="json")

    about = json.loads(capsys.readouterr().out)
    setting = about["settings"]["properties"]["batch_config"]
    assert (setting["title"], setting["description"]) == (
        "Batch Configuration",
        "Configuration for BATCH message capabilities.",
    )


def test_the_seams_module_is_the_only_one_importing_sdk_internals() -> None:
    package = Path(inspect.getfile(sdk_seams)).parent
    found = [
        f"{path.relative_to(package)}: {line.strip()}"
        for path in sorted(package.rglob("*.py"))
        for line in path.read_text().splitlines()
        if "singer_sdk" in line and "._" in line.split("#")[0]
    ]
    assert found, "the check finds the seams' own imports"
    assert all(entry.startswith("sdk_seams.py") for entry in found), found
