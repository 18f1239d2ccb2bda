"""The baseline's upstream: a bare FastAPI endpoint where intake would be, answering a
submission with a fixed receipt, so a run through the same gateway measures the hop alone."""

from fastapi import FastAPI, Request, Response

app = FastAPI()
ANSWER = (
    b'{"document_id":"00000000-0000-4000-8000-000000000000","registration_number":'
    b'"3601-2026-000001","received_at":"2026-11-22T00:00:00Z","receipt":"bench"}'
)


@app.post("/v1/documents")
async def accept(request: Request) -> Response:
    await request.body()
    return Response(ANSWER, status_code=201, media_type="application/json")
