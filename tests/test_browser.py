"""helpers.browser: a headless Chromium leaves no process and no profile folder behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from helpers import browser


def group_members(group: int) -> list[int]:
    """The processes whose process group is `group` (from /proc: the fifth field of ``stat``,
    after the command's name in parentheses)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        if int(fields[2]) == group:
            members.append(int(stat.parent.name))
    return members


@pytest.mark.chromium
def test_chromium_leaves_no_process_and_no_profile(tmp_path, monkeypatch, request):
    """Chromium runs in a process group of its own with the processes it starts; once
    :func:`browser.open_page` returns none of them is left, and its profile folder is gone,
    and so is the folder of its singleton socket it makes in TMPDIR (killed, it leaves that
    behind: one ``org.chromium.Chromium.*`` per page, in every CI run).
    (Its network service writes into the profile as it shuts down: a folder removed before
    that came back, one per CI run.)"""
    if not browser.CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{browser.CHROMIUM} not found: CI must run the browser checks")
        pytest.skip("needs Debian's chromium (make chromium)")
    # short: Chromium's singleton socket goes in a folder in TMPDIR, and a socket's path
    # holds at most 107 bytes (pytest's tmp_path is too long)
    scratch = Path(tempfile.mkdtemp(prefix="rl-"))
    request.addfinalizer(lambda: shutil.rmtree(scratch, ignore_errors=True))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where mkdtemp makes the profile
    monkeypatch.setenv("TMPDIR", str(scratch))  # where Chromium would make its own folders
    page = tmp_path / "page.html"
    page.write_text("<html><head><title>t</title></head><body><p>hello</p></body></html>")
    seen: dict[str, object] = {}

    class Watched(browser._Pipe):
        def close(self) -> None:
            seen["group"] = os.getpgid(self.proc.pid)
            seen["members"] = group_members(self.proc.pid)
            super().close()

    monkeypatch.setattr(browser, "_Pipe", Watched)
    got = browser.open_page(page.as_uri())
    assert "hello" in got.text
    group = seen["group"]
    assert group != os.getpgrp()  # not this process's group: a group of Chromium's own
    assert len(seen["members"]) > 1  # the browser and the processes it started
    assert group_members(group) == []
    with pytest.raises(ProcessLookupError):
        os.killpg(group, 0)
    assert list(scratch.iterdir()) == []
