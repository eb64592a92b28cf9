"""The Account service: balances, open orders, one order's state, and the instruments.

A trading key sees its own account (``account`` 0 or its own id); a key of a role in
`ACCOUNT_READ_ANY_ROLES` (risk, compliance, admin) may name any account.
"""

from __future__ import annotations

import grpc

from engine.messages import GetBalances, GetOpenOrders, GetOrder
from gateway._proto.clearline.v1 import account_pb2, account_pb2_grpc
from gateway.auth import ACCOUNT_READ_ANY_ROLES, ALL_ROLES
from gateway.context import GatewayContext, abort
from gateway.convert import balances_proto, instrument_proto, int63_max, order_proto


class AccountServicer(account_pb2_grpc.AccountServicer):
    def __init__(self, context: GatewayContext) -> None:
        self._ctx = context

    async def _account(self, requested: int, call: grpc.aio.ServicerContext) -> int:
        """The account a read may see: the key's own, or any for the roles that may."""
        identity = await self._ctx.authorize(call, ALL_ROLES)
        if requested in (0, identity.account_id):
            if identity.account_id == 0:
                await abort(call, grpc.StatusCode.INVALID_ARGUMENT, "name the account to read")
            return identity.account_id
        if identity.role not in ACCOUNT_READ_ANY_ROLES:
            await abort(
                call,
                grpc.StatusCode.PERMISSION_DENIED,
                f"API key {identity.key_id} may read only account {identity.account_id}",
            )
        if requested > int63_max:
            await abort(call, grpc.StatusCode.INVALID_ARGUMENT, "account must fit in 63 bits")
        return requested

    async def GetBalances(
        self, request: account_pb2.AccountRequest, context: grpc.aio.ServicerContext
    ) -> account_pb2.Balances:
        account_id = await self._account(request.account, context)
        reply = await self._ctx.query(context, GetBalances(account_id=account_id))
        if not reply.ok:
            await abort(context, grpc.StatusCode.NOT_FOUND, reply.error)
        return balances_proto(reply.result, self._ctx.catalog, reply.journal_seq)

    async def GetOpenOrders(
        self, request: account_pb2.AccountRequest, context: grpc.aio.ServicerContext
    ) -> account_pb2.Orders:
        account_id = await self._account(request.account, context)
        reply = await self._ctx.query(context, GetOpenOrders(account_id=account_id))
        if not reply.ok:
            await abort(context, grpc.StatusCode.NOT_FOUND, reply.error)
        catalog = self._ctx.catalog
        return account_pb2.Orders(
            account=account_id,
            orders=[order_proto(order, catalog) for order in reply.result["orders"]],
        )

    async def GetOrder(
        self, request: account_pb2.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> account_pb2.Order:
        account_id = await self._account(request.account, context)
        named = request.WhichOneof("order")
        if named == "order_id" and 0 < request.order_id <= int63_max:
            query = GetOrder(account_id=account_id, order_id=request.order_id)
        elif named == "client_order_id" and request.client_order_id <= int63_max:
            query = GetOrder(account_id=account_id, client_order_id=request.client_order_id)
        else:
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                "order_must_be_named (1012): an order id or a client order id below 2^63",
                (("clearline-reason", "1012"),),
            )
        reply = await self._ctx.query(context, query)
        if not reply.ok:
            await abort(context, grpc.StatusCode.NOT_FOUND, reply.error)
        return order_proto(reply.result, self._ctx.catalog)

    async def ListInstruments(
        self, request: account_pb2.ListInstrumentsRequest, context: grpc.aio.ServicerContext
    ) -> account_pb2.Instruments:
        await self._ctx.authorize(context, ALL_ROLES)
        try:
            catalog = await self._ctx.load_catalog()  # fresh: statuses change with halts
        except Exception as exc:
            await abort(context, grpc.StatusCode.UNAVAILABLE, f"the engine did not answer: {exc}")
        return account_pb2.Instruments(
            instruments=[instrument_proto(i) for _, i in sorted(catalog.by_id.items())]
        )


__all__ = ["AccountServicer"]
