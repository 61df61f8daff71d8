"""The pinned environment: requirements.in, requirements.txt and environment.yml agree."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

import yaml
from packaging.requirements import Requirement

from helpers import paths


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    out = {}
    for line in (paths.ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert "==" in line, f"requirements.txt: '{line}' is not an exact pin"
            name, version = line.split("==")
            out[canon(name)] = version
    return out


def top_level() -> list[Requirement]:
    reqs = []
    for line in (paths.ROOT / "requirements.in").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            reqs.append(Requirement(line))
    return reqs


def test_every_dependency_is_pinned_and_satisfies_its_range():
    pinned = pins()
    for req in top_level():
        assert canon(req.name) in pinned, (
            f"{req.name} is in requirements.in but not pinned in requirements.txt"
        )
        assert req.specifier.contains(pinned[canon(req.name)]), (
            f"{req.name}=={pinned[canon(req.name)]} violates {req.specifier}"
        )


def test_pandas_major_version_is_2_for_lifelines():
    assert pins()["pandas"].startswith("2.")


def test_environment_yml_wraps_the_pins():
    env = yaml.safe_load((paths.ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert pip == ["-r requirements.txt", "-e ."]


def test_installed_environment_matches_the_pins():
    pinned = pins()
    for req in top_level():
        assert metadata.version(req.name) == pinned[canon(req.name)], (
            f"{req.name}: installed version differs from the pin; run make setup"
        )


def test_project_metadata():
    project = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"].startswith(">=3.11")
    pre = yaml.safe_load((paths.ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {h["id"]: h for r in pre["repos"] for h in r["hooks"]}
    assert {"ruff", "ruff-format", "nbstripout"} <= set(hooks)
    assert {"--keep-output", "--keep-count"} <= set(hooks["nbstripout"]["args"])


def test_make_help_lists_every_target():
    makefile = (paths.ROOT / "Makefile").read_text()
    documented = set(re.findall(r"^([a-zA-Z_-]+):.*## ", makefile, flags=re.M))
    assert {"help", "setup", "report", "test", "lab", "lint", "data"} <= documented
    phony = set(re.search(r"^\.PHONY:(.*)$", makefile, flags=re.M).group(1).split())
    assert documented <= phony | {"client-report", "chromium"}
