"""The bare endpoint that ingestion is compared with: `python -m bench.bare_app --port P`.

One FastAPI route, `POST /events`, validating the same body as storehooks' (a pydantic
model of the same shape) and answering 202, with no key check, no database and no queue;
served by uvicorn with storehooks' own log configuration (one access line per request).
"""

import argparse
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.core import log_format
from app.core.enums import EventType
from app.core.ids import new_id

StoreId = Annotated[str, Field(min_length=1, max_length=200)]


class BareEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: EventType
    app_id: StoreId
    sku_id: StoreId | None = None
    occurred_at: AwareDatetime | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class BareAccepted(BaseModel):
    id: str
    deliveries: int


app = FastAPI(title="bare endpoint")


@app.post("/events", status_code=202, response_model=BareAccepted)
async def post_event(body: BareEvent) -> BareAccepted:
    return BareAccepted(id=new_id("evt"), deliveries=0)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        proxy_headers=False,
        log_config=log_format.logging_config(),
    )


if __name__ == "__main__":
    main()
