"""The bare FastAPI anchor ``bench_api.py`` measures the service against.

One route that takes a pydantic body and answers a small JSON object, under the same
uvicorn (event loop, HTTP parser, workers) as ``smartretry serve``: what any FastAPI
service on this machine pays for HTTP, validation and JSON, with no product code. The
issue's goal for the service is a p99 at most twice this app's, measured in the same run.

    uvicorn anchor_app:app --app-dir benchmarks --workers 2 --port PORT
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict


class Body(BaseModel):
    """A recommendation request's identity; the other fields are accepted as they are."""

    model_config = ConfigDict(extra="allow")

    invoice_id: str
    amount_minor: int
    currency: str
    failed_at: str


class Answer(BaseModel):
    invoice_id: str
    retries: list[str]


app = FastAPI()


@app.get("/readyz")
def ready() -> dict[str, bool]:
    return {"ready": True, "model_loaded": False}


@app.post("/v1/recommendations")
async def recommend(body: Body) -> Answer:
    return Answer(invoice_id=body.invoice_id, retries=[body.failed_at])
