"""Downstream URLs naming an address the egress rules refuse are config errors, unless allowed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from orchestrator.config import HttpServerSpec, load_config
from orchestrator.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

_CONFIG = """\
servers:
  local:
    url: http://127.0.0.1:8000/mcp
  lan:
    url: http://10.0.0.5:8000/mcp
  meta:
    url: http://169.254.169.254/latest/meta-data
  aws6:
    type: sse
    url: "http://[fd00:ec2::254]/sse"
  spelt:
    url: http://2852039166/mcp
    disabled: true
  named:
    url: http://metadata.google.internal/
"""


def test_metadata_addresses_in_server_urls_are_reported_with_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "orchestrator.yaml"
    path.write_text(_CONFIG, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    lines = str(caught.value).splitlines()[1:]
    refusal = "resolves to a link-local/cloud-metadata address ({}); list it in egress.allow to connect anyway"
    assert lines == [
        f"  - {path}:7: servers.meta.url: http://169.254.169.254/ " + refusal.format("169.254.169.254"),
        f"  - {path}:10: servers.aws6.url: http://[fd00:ec2::254]/ " + refusal.format("fd00:ec2::254"),
        f"  - {path}:12: servers.spelt.url: http://2852039166/ " + refusal.format("169.254.169.254"),
    ]


def test_egress_allow_lifts_the_refusal_for_the_addresses_it_lists(tmp_path: Path) -> None:
    path = tmp_path / "orchestrator.yaml"
    path.write_text(_CONFIG + "egress:\n  allow: [169.254.169.254, 'fd00:ec2::/32']\n", encoding="utf-8")
    config = load_config(path)
    meta = config.servers["meta"]
    assert isinstance(meta, HttpServerSpec)
    assert meta.url == "http://169.254.169.254/latest/meta-data"
    assert config.egress.allow == ("169.254.169.254", "fd00:ec2::/32")


def test_a_bad_egress_allow_entry_is_a_config_error_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "orchestrator.yaml"
    path.write_text("servers: {}\negress:\n  allow:\n    - 169.254.169.254\n    - metadata.google.internal\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert f"{path}:3: egress.allow: 'metadata.google.internal' is not" in str(caught.value)
    assert "is not an IP address or network (CIDR)" in str(caught.value)
