"""`adyn local [--port P]`: the embedded DynamoDB of `adyn.testing`, until interrupted."""

from __future__ import annotations

import anyio
import click

from ._common import EXIT_OK, CommandError, run


@click.command()
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    metavar="P",
    help="The loopback port to listen on (default: a free one).",
)
def local(port: int | None) -> int:
    """Run the embedded DynamoDB (moto) on 127.0.0.1 until Ctrl-C; print its endpoint URL.

    Data lives in memory and goes away with the server. Point adyn at it with
    `--endpoint-url URL` or `AWS_ENDPOINT_URL_DYNAMODB=URL`.
    """

    async def main() -> int:
        from adyn.testing import LocalServerError, local_dynamodb

        try:
            async with local_dynamodb(port=port) as url:
                click.echo(url)  # the one line on stdout: scripts read it
                click.echo(f"adyn: DynamoDB listening on {url}; Ctrl-C stops it", err=True)
                await anyio.sleep_forever()
        except LocalServerError as exc:
            raise CommandError(str(exc)) from None
        return EXIT_OK

    return run(main, interrupt_ends=True)
