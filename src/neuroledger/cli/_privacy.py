"""What the privacy command groups share: the service, the gateway client, option types."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from neuroledger.cli._context import context_of

if TYPE_CHECKING:
    from neuroledger.privacy import GatewayClient, PrivateData

__all__ = ["GatewayOpt", "IdentityOpt", "OwnerOpt", "PurposeOpt", "data_of", "gateway_client"]

GatewayOpt = Annotated[
    str, typer.Option("--gateway", help="Gateway URL, e.g. http://127.0.0.1:8700.")
]
IdentityOpt = Annotated[str, typer.Option("--identity", help="Local identity making the request.")]
PurposeOpt = Annotated[str, typer.Option("--purpose", help="Purpose of the use, e.g. research.")]
OwnerOpt = Annotated[str, typer.Option("--owner", help="Local identity that owns the asset.")]


def data_of(ctx: typer.Context) -> PrivateData:
    from neuroledger.privacy import PrivateData

    c = context_of(ctx)
    return PrivateData(c.chain(), c.keystore(), c.provenance(), c.settings.home)


def gateway_client(ctx: typer.Context, data: PrivateData, url: str, identity: str) -> GatewayClient:
    from neuroledger.privacy import GatewayClient

    c = context_of(ctx)
    return GatewayClient(
        url, identity=data.identity(identity), account=c.keystore().owner_account(identity),
        domain=data.domain,
    )  # fmt: skip
