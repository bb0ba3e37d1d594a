"""`triad matches ...` through click: JSON output, merge by candidate, unmerge, reject, train, RBAC."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli_matches import matches
from hub.context import Context
from hub.errors import PermissionDenied

from .helpers import CONFIG, make_hub

STRICT = CONFIG.replace("link_at: 0.92, review_at: 0.75", "link_at: 0.999, review_at: 0.5")


def _hub(tmp_path: Path, extra: str = ""):  # noqa: ANN202
    text = STRICT + extra
    hub = make_hub(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path, text)
    (tmp_path / "triad.yaml").write_text(text.format(url=f"sqlite:///{tmp_path / 'hub.db'}", tmp=tmp_path),
                                         encoding="utf-8")
    hub.feed("crm", [{"customer_no": "C1", "name": "上海星海贸易有限公司", "city": "上海", "phone": "13800138000"}])
    hub.feed("legacy", [{"customer_no": "L1", "name": "Shanghai Xinghai Trading Co., Ltd.", "city": "Shanghai"}])
    return hub


def _run(tmp_path: Path, *args: str, user: str = "alice") -> dict:
    ctx = Context(config_path=str(tmp_path / "triad.yaml"), user_name=user)
    res = CliRunner().invoke(matches, [*args, "--json"], obj=ctx, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_list_merge_unmerge_reject(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    (c,) = _run(tmp_path, "list")["candidates"]
    assert c["records"]["a"]["fields"]["name"] and c["records"]["b"]["fields"]["name"]
    assert c["comparison"]["name"]["label"] == "similar" and c["score_now"] is not None
    assert set(c["xrefs"]["a"]) | set(c["xrefs"]["b"]) == {"crm", "legacy"}
    merged = _run(tmp_path, "merge", c["id"])
    assert merged["winner"] == min(c["record_a"], c["record_b"]) and merged["xrefs_moved"] == 1
    assert hub.record_of("legacy", "L1") == hub.record_of("crm", "C1")
    assert _run(tmp_path, "list", "--merges")["merges"][0]["status"] == "merged"
    _run(tmp_path, "unmerge", merged["merge_id"])
    assert hub.record_of("legacy", "L1") != hub.record_of("crm", "C1")
    (c2,) = _run(tmp_path, "list")["candidates"]                     # the candidate is open again
    assert c2["id"] == c["id"]
    assert _run(tmp_path, "reject", c["id"])["status"] == "rejected"
    assert _run(tmp_path, "list")["candidates"] == []
    assert len(_run(tmp_path, "list", "--status", "rejected")["candidates"]) == 1


def test_merge_needs_the_merge_permission(tmp_path: Path) -> None:
    _hub(tmp_path, "roles:\n  viewer: {{entities: [customer], can: [read]}}\nusers:\n  bob: [viewer]\n  alice: [admin]\n")
    (c,) = _run(tmp_path, "list", user="bob")["candidates"]
    ctx = Context(config_path=str(tmp_path / "triad.yaml"), user_name="bob")
    with pytest.raises(PermissionDenied, match="merge"):
        CliRunner().invoke(matches, ["reject", c["id"]], obj=ctx, catch_exceptions=False)
    with pytest.raises(PermissionDenied, match="merge"):
        CliRunner().invoke(matches, ["train"], obj=ctx, catch_exceptions=False)


def test_every_command_has_help_with_an_example() -> None:
    for name, cmd in matches.commands.items():
        assert "Example" in (cmd.help or ""), name
