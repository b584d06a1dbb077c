"""An aiohttp service on adyn: the engine lives in the app's cleanup context.

    AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 python examples/aiohttp_app.py

(or with your region and credentials for real DynamoDB). Handlers share the one engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from aiohttp import web
from pydantic import ValidationError

from adyn import ConstraintViolation, Engine, F, HashKey, Model, Version


class Counter(Model):
    class Meta:
        table_name = "counters"

    name: Annotated[str, HashKey()]
    value: int = 0
    note: str = ""
    version: Annotated[int, Version()] = 0


ENGINE = web.AppKey("engine", Engine)


def create_app(**engine_options: Any) -> web.Application:
    """The app; `engine_options` go to `Engine` (endpoint_url, table_name_template, ...)."""

    async def engine_ctx(app: web.Application) -> AsyncIterator[None]:
        async with Engine(**engine_options) as engine:
            await engine.bind(Counter)
            app[ENGINE] = engine
            yield

    async def put_counter(request: web.Request) -> web.Response:
        try:
            counter = Counter(name=request.match_info["name"], **await request.json())
        except ValidationError as exc:
            return web.json_response({"errors": exc.errors(include_url=False)}, status=422)
        await request.app[ENGINE].save(counter)
        return web.json_response(counter.model_dump(mode="json"), status=201)

    async def get_counter(request: web.Request) -> web.Response:
        counter = await request.app[ENGINE].get(Counter, name=request.match_info["name"])
        if counter is None:
            raise web.HTTPNotFound(text="no such counter")
        return web.json_response(counter.model_dump(mode="json"))

    async def increment(request: web.Request) -> web.Response:
        engine = request.app[ENGINE]
        try:
            counter = await engine.update(
                Counter,
                key={"name": request.match_info["name"]},
                actions=[F(Counter.value).add(1)],
                condition=F(Counter.name).exists(),
            )
        except ConstraintViolation:
            raise web.HTTPNotFound(text="no such counter") from None
        return web.json_response(counter.model_dump(mode="json"))

    app = web.Application()
    app.cleanup_ctx.append(engine_ctx)
    app.router.add_put("/counters/{name}", put_counter)
    app.router.add_get("/counters/{name}", get_counter)
    app.router.add_post("/counters/{name}/increment", increment)
    return app


if __name__ == "__main__":
    web.run_app(create_app(), host="127.0.0.1", port=8080)
