"""Which upstream client a downstream's request goes to: the caller's, or nobody's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.downstream import caller_of, current_peer

if TYPE_CHECKING:
    from collections.abc import Hashable

    import mcp_types as types


class _Peer:
    def __init__(self, client: Hashable) -> None:
        self._client = client

    @property
    def client_identity(self) -> Hashable:
        return self._client

    def supports_sampling(self) -> bool:
        return True

    def supports_elicitation(self) -> bool:
        return True

    def supports_roots(self) -> bool:
        return True

    async def create_message(
        self, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
        raise AssertionError("not called")

    async def elicit(self, params: types.ElicitRequestParams) -> types.ElicitResult | types.ErrorData:
        raise AssertionError("not called")

    async def list_roots(self) -> types.ListRootsResult | types.ErrorData:
        raise AssertionError("not called")

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        return None


def test_the_context_names_the_caller_whatever_else_is_in_flight() -> None:
    mine, other = _Peer("a"), _Peer("b")
    token = current_peer.set(mine)
    try:
        assert caller_of("s", "sampling", [other, mine, other]) is mine
    finally:
        current_peer.reset(token)


def test_without_context_calls_of_one_client_name_that_client() -> None:
    first, second = _Peer("a"), _Peer("a")
    assert caller_of("s", "sampling", [first, second]) is second


def test_without_context_calls_of_two_clients_name_nobody() -> None:
    refusal = caller_of("s", "elicitation", [_Peer("a"), _Peer("b")])
    assert isinstance(refusal, str)
    assert "server 's' asked for elicitation while calls from 2 clients were in flight" in refusal
    assert "refused" in refusal


def test_without_any_call_in_flight_nobody_is_asked() -> None:
    refusal = caller_of("s", "roots", [])
    assert refusal == "server 's' asked for roots outside any call, so there is no client to ask"
