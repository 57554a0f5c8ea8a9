"""Plug-ins: docs/extending.md's code blocks run as written, a plug-in found through an installed
distribution's entry point, and the registries' errors (duplicates, failing plug-ins)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from train.engine.config import TrainConfig
from train.methods import Method, register_method, register_preset
from train.methods.plugins import PluginError, import_plugin, load_plugins

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "extending.md"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.M | re.S)


@pytest.fixture(autouse=True)
def own_registries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by a test stay in that test."""
    from train.methods import load_methods, registry

    load_methods()
    for name in ("_METHODS", "_PRESETS", "_PLACES"):
        monkeypatch.setattr(registry, name, dict(getattr(registry, name)))


def tutorial_blocks() -> list[tuple[str, str, str]]:
    """``(language, info, code)`` of every fenced block of the tutorial, in order."""
    return [(m[1], m[2].strip(), m[3]) for m in BLOCK.finditer(TUTORIAL.read_text())]


def depthkit_bin(folder: Path) -> Path:
    """A ``depthkit`` command on a PATH folder that runs this checkout's ``cli.py``."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "depthkit"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "cli.py"}" "$@"\n')
    script.chmod(0o755)
    return folder


def run(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=1500
    )


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DEPTHKIT_PLUGINS"}
    env["PATH"] = f"{depthkit_bin(tmp_path / 'bin')}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.mark.slow
def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    blocks = tutorial_blocks()
    files = {info.removeprefix("file="): code for lang, info, code in blocks if lang == "python"}
    assert set(files) == {"my_method.py", "my_supervised.py"}
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    bash = "\n".join(code for lang, _, code in blocks if lang == "bash")
    done = run("set -euo pipefail\n" + bash, tmp_path, clean_env(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "monodepth2-tv-m" in done.stdout and "monodepth2_tv" in done.stdout
    refused = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(refused) == 1, done.stderr[-2000:]
    assert "'monodepth2_tv', which is not registered" in refused[0]
    assert f"DEPTHKIT_PLUGINS={tmp_path / 'my_method.py'}" in refused[0]
    for made in ("runs/tv/checkpoints/last.pt", "runs/tv/eval.json", "tv.onnx", "logl1.pt"):
        assert (tmp_path / made).is_file(), made
    assert list((tmp_path / "predictions").rglob("*_depth.npy"))
    assert "tv" in (tmp_path / "runs" / "tv" / "log.jsonl").read_text()  # its own scalar


def test_the_tutorial_method_is_one_file_with_its_preset(tmp_path: Path) -> None:
    code = dict((info, code) for lang, info, code in tutorial_blocks() if lang == "python")
    path = tmp_path / "tutorial_md2_tv.py"
    path.write_text(code["file=my_method.py"].replace('"monodepth2_tv"', '"tutorial_tv"')
                    .replace('"monodepth2-tv-m"', '"tutorial-tv-m"'))  # fmt: skip
    module = import_plugin(str(path))
    from train.methods import build_method, preset

    config = preset("tutorial-tv-m")
    assert config.params.tv_weight == 1e-3 and type(build_method(config)) is module.TVMonodepth2


@pytest.mark.slow
def test_an_installed_distribution_is_loaded_through_its_entry_point(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "depthkit_ep_demo-0.1.dist-info").mkdir(parents=True)
    (site / "depthkit_ep_demo-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: depthkit-ep-demo\nVersion: 0.1\n"
    )
    (site / "depthkit_ep_demo-0.1.dist-info" / "entry_points.txt").write_text(
        "[depthkit.plugins]\nep_demo = depthkit_ep_demo\n"
    )
    (site / "depthkit_ep_demo.py").write_text(
        textwrap.dedent(
            """
            from dataclasses import dataclass
            from train.engine.config import TrainConfig
            from train.methods import register_method, register_preset
            from train.methods.monodepth2 import Monodepth2, Monodepth2Params

            @register_method
            class EntryPointDemo(Monodepth2):
                name = "ep_demo"

            register_preset(TrainConfig(preset="ep-demo-m", method="ep_demo",
                                        params=Monodepth2Params(frame_ids=(0, -1, 1))))
            """
        )
    )
    env = clean_env(tmp_path)
    env["PYTHONPATH"] = f"{site}{os.pathsep}{ROOT}"
    done = run("depthkit info", tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert "ep-demo-m" in done.stdout and "Plug-ins: depthkit_ep_demo" in done.stdout


@pytest.mark.slow
def test_a_failing_plug_in_is_one_error_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.py"
    bad.write_text("import no_such_module_here\n")
    env = clean_env(tmp_path) | {"DEPTHKIT_PLUGINS": str(bad)}
    done = run("depthkit train --help", tmp_path, env)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: plug-in DEPTHKIT_PLUGINS entry {bad} failed")
    assert "ModuleNotFoundError" in done.stderr


def test_a_missing_plug_in_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPTHKIT_PLUGINS", "/no/such/plugin.py")
    with pytest.raises(PluginError, match="/no/such/plugin.py.*no such file"):
        load_plugins()


class TestRegistration:
    def test_a_name_registered_twice_names_both_places(self) -> None:
        class First(Method):
            name = "twice_registered"
            Params = dict

        register_method(First)

        class Second(Method):
            name = "twice_registered"
            Params = dict

        with pytest.raises(ValueError, match=r"registered twice: at .*test_extending.py:\d+ and "):
            register_method(Second)

    def test_a_preset_registered_twice_names_both_places(self) -> None:
        config = TrainConfig(preset="monodepth2-m")
        with pytest.raises(ValueError, match=r"preset 'monodepth2-m' is registered twice: at .*"
                           r"monodepth2.py:\d+ and .*test_extending.py:\d+"):  # fmt: skip
            register_preset(config)

    def test_a_preset_needs_its_method_first(self) -> None:
        with pytest.raises(ValueError, match="method 'no_such_method' is not registered"):
            register_preset(TrainConfig(preset="x", method="no_such_method"))

    def test_a_method_needs_a_name_and_params(self) -> None:
        class Nameless(Method):
            Params = dict

        with pytest.raises(ValueError, match="sets no `name`"):
            register_method(Nameless)
