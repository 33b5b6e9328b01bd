"""The access policy: which tools, prompts and resources a grant opens, composites included."""

from __future__ import annotations

import mcp_types as types

from orchestrator.auth import OWNER, AccessPolicy, Grant, Principal, consent_groups
from orchestrator.catalog import ServerManifest, build_catalog
from tests.workflow.helpers import plan_of, tool


def _principal(*selectors: str) -> Principal:
    return Principal(kind="oauth", client_id="c", subject="owner", grant=Grant.of(selectors))


def _policy() -> AccessPolicy:
    catalog = build_catalog(
        [
            ServerManifest(
                "files",
                "files",
                tools=(tool("read", readOnlyHint=True), tool("delete", destructiveHint=True)),
                prompts=(types.Prompt(name="summary"),),
                resources=(types.Resource(uri="file:///notes.txt", name="notes"),),
            ),
            ServerManifest("mail", "mail", tools=(tool("send"),)),
        ],
        reserved=["digest"],
    )
    digest = plan_of({"a": {"tool": "files.read"}, "b": {"tool": "mail.send", "needs": ["a"]}}, name="digest")
    return AccessPolicy(catalog, {"digest": digest})


def test_a_server_grant_opens_its_tools_prompts_and_resources_only() -> None:
    policy, files = _policy(), _principal("server:files")
    names = [t.name for t in policy.tools(files, [types.Tool(name=n, input_schema={}) for n in _all_tools()])]
    assert names == ["files__read", "files__delete"]
    assert policy.prompt_allowed(files, "files__summary")
    assert policy.resource_allowed(files, _notes_uri(policy))
    mail = _principal("server:mail")
    assert not policy.prompt_allowed(mail, "files__summary")
    assert not policy.resource_allowed(mail, _notes_uri(policy))


def test_a_tool_grant_opens_that_tool_but_not_its_servers_prompts() -> None:
    policy, reader = _policy(), _principal("tool:files__read")
    assert policy.tool_allowed(reader, "files__read")
    assert not policy.tool_allowed(reader, "files__delete")
    assert not policy.prompt_allowed(reader, "files__summary")
    assert policy.step_allowed(reader, "files", "read")
    assert not policy.step_allowed(reader, "mail", "send")


def test_a_composite_needs_its_own_grant_and_every_step_tool() -> None:
    policy = _policy()
    assert not policy.tool_allowed(_principal("tool:digest"), "digest")
    assert not policy.tool_allowed(_principal("tool:digest", "server:files"), "digest")
    assert not policy.tool_allowed(_principal("server:files", "server:mail"), "digest")
    assert policy.tool_allowed(_principal("tool:digest", "tool:files__read", "server:mail"), "digest")
    assert policy.tool_allowed(OWNER, "digest")


def test_unknown_names_are_never_allowed_except_to_everything() -> None:
    policy, everyone = _policy(), _principal("server:files", "server:mail")
    assert not policy.tool_allowed(everyone, "files__nope")
    assert not policy.prompt_allowed(everyone, "nope")
    assert not policy.resource_allowed(everyone, "file:///elsewhere")


def test_the_consent_page_lists_each_server_with_its_tools_and_the_composites() -> None:
    policy = _policy()
    groups = consent_groups(policy._catalog, policy._composites)  # pyright: ignore[reportPrivateUsage]
    assert [(g.kind, g.key) for g in groups] == [("server", "files"), ("server", "mail"), ("composites", "composites")]
    files = {t.name: t for t in groups[0].tools}
    assert files["files__read"].read_only
    assert not files["files__read"].destructive
    assert files["files__delete"].destructive
    assert [t.name for t in groups[2].tools] == ["digest"]


def _all_tools() -> list[str]:
    return ["files__read", "files__delete", "mail__send", "digest"]


def _notes_uri(policy: AccessPolicy) -> str:
    return str(policy._catalog.resources[0].uri)  # pyright: ignore[reportPrivateUsage]
