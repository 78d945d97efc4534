"""The shared server interceptor on a real in-process grpc.aio server: validation -> INVALID_ARGUMENT with
BadRequest, domain errors -> ErrorInfo, unexpected exceptions -> INTERNAL without internals, call context
from metadata and its propagation by internal clients."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from pymongo.errors import ServerSelectionTimeoutError
from tronpay.tron_client.v1 import tron_client_pb2 as pb
from tronpay.tron_client.v1 import tron_client_pb2_grpc as pb_grpc

from services.common import context, errors
from services.common.access import Role
from services.common.clients import open_channel
from services.common.contract import with_unimplemented_defaults
from services.common.interceptors import ServerInterceptor
from tests.harness.pki import aio_channel, credentials

VALID_ADDRESS = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
SECRET = "db password is hunter2 at /srv/app.py line 42"


@with_unimplemented_defaults
class Probe(pb_grpc.TronClientServiceServicer):
    """A servicer whose RPCs exercise each path of the interceptor."""

    async def GetAccount(self, request: pb.GetAccountRequest, ctx: Any) -> pb.GetAccountResponse:
        raise errors.NotFound(
            "account not found", reason="ACCOUNT_NOT_FOUND", metadata={"address": request.address}
        )

    async def GetTransaction(self, request: pb.GetTransactionRequest, ctx: Any) -> pb.GetTransactionResponse:
        raise RuntimeError(SECRET)

    async def GetAccountResource(
        self, request: pb.GetAccountResourceRequest, ctx: Any
    ) -> pb.GetAccountResourceResponse:
        raise ServerSelectionTimeoutError("mongodb://app:hunter2@db.internal:27017: connection refused")

    async def GetNetworkInfo(self, request: pb.GetNetworkInfoRequest, ctx: Any) -> pb.GetNetworkInfoResponse:
        call = context.current()
        assert call is not None
        return pb.GetNetworkInfoResponse(
            network=call.request_id, node_version=f"{call.caller}|{call.subject}"
        )

    height_calls = 0

    async def GetNetworkHeight(
        self, request: pb.GetNetworkHeightRequest, ctx: Any
    ) -> pb.GetNetworkHeightResponse:
        Probe.height_calls += 1
        if Probe.height_calls == 1:
            raise errors.Unavailable("first attempt fails")
        return pb.GetNetworkHeightResponse(head_block_number=Probe.height_calls)

    async def GetNetworkFees(self, request: pb.GetNetworkFeesRequest, ctx: Any) -> pb.GetNetworkFeesResponse:
        await asyncio.sleep(3)
        return pb.GetNetworkFeesResponse()

    async def WatchAddresses(self, request: pb.WatchAddressesRequest, ctx: Any) -> pb.WatchAddressesResponse:
        return pb.WatchAddressesResponse()

    async def StreamTransfers(
        self, request: pb.StreamTransfersRequest, ctx: Any
    ) -> AsyncIterator[pb.StreamTransfersResponse]:
        yield pb.StreamTransfersResponse()
        raise errors.Unavailable("node down", reason="NODE_UNAVAILABLE")


@pytest.fixture
async def target() -> AsyncIterator[str]:
    server = grpc.aio.server(
        interceptors=[ServerInterceptor("tron_client")], options=[("grpc.so_reuseport", 0)]
    )
    probe = Probe()  # type: ignore[abstract]  # @with_unimplemented_defaults fills in the other RPCs
    pb_grpc.add_TronClientServiceServicer_to_server(probe, server)
    port = server.add_secure_port("127.0.0.1:0", credentials("tron-client").server())
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)


def _internal(target: str) -> grpc.aio.Channel:
    """As a service granted tron-client's internal RPCs."""
    return aio_channel(target, "tron-client", identity="wallet-manager", roles=(), subject="")


def _details(err: grpc.aio.AioRpcError) -> dict[str, Any]:
    status = errors.status_from_error(err)
    assert status is not None and status.code == err.code().value[0] and status.message == err.details()
    out: dict[str, Any] = {}
    for detail in status.details:
        for cls in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest):
            if detail.Is(cls.DESCRIPTOR):
                msg = cls()
                detail.Unpack(msg)
                out[cls.DESCRIPTOR.name] = msg
    return out


async def test_invalid_request_gives_bad_request_field_violations(target: str) -> None:
    async with _internal(target) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.TronClientServiceStub(ch).GetAccount(
                pb.GetAccountRequest(address="T123"), timeout=5
            )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad = _details(err.value)["BadRequest"]
    assert [(v.field, v.reason) for v in bad.field_violations] == [("address", "string.pattern")]
    assert "address" in (err.value.details() or "")


async def test_repeated_field_violation_paths_have_indexes(target: str) -> None:
    req = pb.StreamTransfersRequest(after_cursor=-1, addresses=[VALID_ADDRESS, "nope"])
    async with _internal(target) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in pb_grpc.TronClientServiceStub(ch).StreamTransfers(req, timeout=5):
                pass
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in _details(err.value)["BadRequest"].field_violations}
    assert fields == {"after_cursor", "addresses[1]"}


async def test_domain_error_carries_error_info(target: str) -> None:
    async with _internal(target) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.TronClientServiceStub(ch).GetAccount(
                pb.GetAccountRequest(address=VALID_ADDRESS), timeout=5
            )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details() == "account not found"
    info = _details(err.value)["ErrorInfo"]
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "ACCOUNT_NOT_FOUND",
        "tron-client.tronpay.example",
        {"address": VALID_ADDRESS},
    )


async def _drain(stream: AsyncIterator[Any], into: list[Any]) -> None:
    async for msg in stream:
        into.append(msg)


async def test_streaming_domain_error_after_a_message(target: str) -> None:
    got: list[Any] = []
    async with _internal(target) as ch:
        stream = pb_grpc.TronClientServiceStub(ch).StreamTransfers(pb.StreamTransfersRequest(), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _drain(stream, got)
    assert len(got) == 1 and err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert _details(err.value)["ErrorInfo"].reason == "NODE_UNAVAILABLE"


async def test_unexpected_exception_is_internal_without_internals(
    target: str, caplog: pytest.LogCaptureFixture
) -> None:
    req = pb.GetTransactionRequest(txid="ab" * 32)
    with caplog.at_level(logging.ERROR, logger="services.rpc"):
        async with _internal(target) as ch:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await pb_grpc.TronClientServiceStub(ch).GetTransaction(req, timeout=5)
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert err.value.details() == "internal error"
    wire = repr(err.value.trailing_metadata()) + repr(err.value.initial_metadata())
    assert "hunter2" not in wire and "app.py" not in wire
    # ...but the server log has the stack trace.
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and SECRET in str(logged[0].exc_info[1])  # type: ignore[index]


async def test_database_down_is_unavailable_without_internals(target: str) -> None:
    async with _internal(target) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.TronClientServiceStub(ch).GetAccountResource(
                pb.GetAccountResourceRequest(address=VALID_ADDRESS), timeout=5
            )
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert err.value.details() == "the database is unavailable"
    assert _details(err.value)["ErrorInfo"].reason == "DATABASE_UNAVAILABLE"
    assert "hunter2" not in repr(err.value.trailing_metadata())


async def test_unimplemented_rpc(target: str) -> None:
    async with _internal(target) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.TronClientServiceStub(ch).GetChainParameters(
                pb.GetChainParametersRequest(), timeout=5
            )
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert err.value.details() == "not implemented yet: GetChainParameters"


async def test_request_id_and_subject_come_from_metadata_or_are_generated(target: str) -> None:
    async with aio_channel(target, "tron-client", subject="") as ch:
        stub = pb_grpc.TronClientServiceStub(ch)
        md = (("x-request-id", "req-123"), ("x-tronpay-subject", "alice"))
        got = await stub.GetNetworkInfo(pb.GetNetworkInfoRequest(), metadata=md, timeout=5)
        assert (got.network, got.node_version) == ("req-123", "edge|alice")
        fresh = await stub.GetNetworkInfo(pb.GetNetworkInfoRequest(), timeout=5)
        assert len(fresh.network) == 32


def _open(target: str, timeout_seconds: float) -> grpc.aio.Channel:
    """A service's internal channel as the edge (public RPCs: the bound context's roles must allow them)."""
    return open_channel(target, "tron-client", credentials("edge"), timeout_seconds)


@pytest.fixture
def as_admin() -> Iterator[None]:
    """Serve as if for an admin's request (the roles the internal client forwards)."""
    token = context.bind(context.CallContext(request_id="outer-admin", roles=frozenset({Role.ADMIN})))
    yield
    context.reset(token)


async def test_internal_client_propagates_context_and_the_peer_is_the_certificate(target: str) -> None:
    channel = _open(target, timeout_seconds=5)
    outer = context.CallContext(request_id="outer-7", subject="bob", roles=frozenset({Role.VIEWER}))
    token = context.bind(outer)
    try:
        got = await pb_grpc.TronClientServiceStub(channel).GetNetworkInfo(
            pb.GetNetworkInfoRequest(), metadata=(("x-tronpay-caller", "wallet-manager"),)
        )
    finally:
        context.reset(token)
        await channel.close()
    # The viewer role went along (the call was allowed); the claimed caller changed nothing.
    assert (got.network, got.node_version) == ("outer-7", "edge|bob")


@pytest.mark.usefixtures("as_admin")
async def test_internal_client_retries_unavailable_by_service_config(target: str) -> None:
    Probe.height_calls = 0
    channel = _open(target, timeout_seconds=5)
    try:
        got = await pb_grpc.TronClientServiceStub(channel).GetNetworkHeight(pb.GetNetworkHeightRequest())
    finally:
        await channel.close()
    assert got.head_block_number == 2 and Probe.height_calls == 2


@pytest.mark.usefixtures("as_admin")
async def test_internal_client_applies_a_default_deadline(target: str) -> None:
    channel = _open(target, timeout_seconds=0.3)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.TronClientServiceStub(channel).GetNetworkFees(pb.GetNetworkFeesRequest())
    finally:
        await channel.close()
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_a_channel_to_the_wrong_service_is_refused(target: str) -> None:
    """The client checks the server's certificate names the service it meant (here it is tron-client's)."""
    # A deadline well past the retry policy's attempts, so a loaded machine still ends on the handshake's
    # UNAVAILABLE rather than on the deadline.
    channel = open_channel(target, "wallet-manager", credentials("usdt-manager"), 15)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.TronClientServiceStub(channel).GetAccount(
                pb.GetAccountRequest(address=VALID_ADDRESS)
            )
    finally:
        await channel.close()
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_line_for_failures_and_state_changes_not_for_successful_reads(
    target: str, caplog: pytest.LogCaptureFixture
) -> None:
    stub_calls = [
        ("GetNetworkInfo", pb.GetNetworkInfoRequest(), None),  # a read that succeeds: DEBUG only
        ("GetAccount", pb.GetAccountRequest(address=VALID_ADDRESS), grpc.StatusCode.NOT_FOUND),
        # A mutation that succeeds: logged, it changed state.
        (
            "WatchAddresses",
            pb.WatchAddressesRequest(request_id="r-1", addresses=[VALID_ADDRESS], watcher="w"),
            None,
        ),
    ]
    with caplog.at_level(logging.DEBUG, logger="services.rpc"):
        async with _internal(target) as ch:
            stub = pb_grpc.TronClientServiceStub(ch)
            for name, request, code in stub_calls:
                if code is None:
                    await getattr(stub, name)(request, timeout=5)
                    continue
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await getattr(stub, name)(request, timeout=5)
                assert err.value.code() == code, name
    levels = {
        r.getMessage().split()[1].rpartition("/")[2]: r.levelno
        for r in caplog.records
        if r.getMessage().startswith("rpc ")
    }
    assert levels == {
        "GetNetworkInfo": logging.DEBUG,
        "GetAccount": logging.INFO,
        "WatchAddresses": logging.INFO,
    }
