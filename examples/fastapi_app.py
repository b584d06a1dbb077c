"""A FastAPI service on adyn: one engine for the whole app, opened in the lifespan.

    AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 uvicorn examples.fastapi_app:app --port 8080

(or with your region and credentials for real DynamoDB). Every request handler shares the
engine, which is safe: one engine serves any number of concurrent tasks.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

from adyn import Engine, F, HashKey, Model, RangeKey


class Note(Model):
    """Stored in DynamoDB, and used as it is as the API's response model."""

    class Meta:
        table_name = "notes"

    owner: Annotated[str, HashKey()]
    id: Annotated[UUID, RangeKey()]
    created: datetime
    text: str
    tags: set[str] = set()


class NewNote(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)
    tags: set[str] = set()


def get_engine(request: Request) -> Engine:
    """The app's engine (a FastAPI dependency)."""
    engine: Engine = request.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def create_app(**engine_options: Any) -> FastAPI:
    """The app; `engine_options` go to `Engine` (endpoint_url, table_name_template, ...)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncGenerator[dict[str, Engine], None]:
        async with Engine(**engine_options) as engine:
            await engine.bind(Note)
            yield {"engine": engine}  # lifespan state: request.state.engine

    app = FastAPI(title="notes", lifespan=lifespan)

    @app.post("/users/{owner}/notes", response_model=Note, status_code=201)
    async def add_note(owner: str, body: NewNote, engine: EngineDep) -> Note:
        note = Note(owner=owner, id=uuid4(), created=datetime.now(UTC), **body.model_dump())
        await engine.save(note)
        return note

    @app.get("/users/{owner}/notes/{note_id}", response_model=Note)
    async def get_note(owner: str, note_id: UUID, engine: EngineDep) -> Note:
        note = await engine.get(Note, owner=owner, id=note_id)
        if note is None:
            raise HTTPException(status_code=404, detail="no such note")
        return note

    @app.get("/users/{owner}/notes", response_model=list[Note])
    async def list_notes(
        owner: str, engine: EngineDep, tag: str | None = None, limit: int = 100
    ) -> list[Note]:
        condition = F(Note.tags).contains(tag) if tag is not None else None
        query = engine.query(Note, key=Note.owner == owner, filter=condition, limit=limit)
        return await query.all()

    return app


app = create_app()
