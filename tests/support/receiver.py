"""A peer that receives envelopes over real HTTP and remembers what it got, so a test can tell
whether each one arrived exactly once."""

import threading
import time
from collections import Counter

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse


class Receiver:
    """Answers every envelope with `answer`. With `batches`, it also takes batches as the
    recommendation service does, answering an envelope whose body is in `answers` with that
    status and every other with 201; without, it answers a batch 404, as code from before
    batches does."""

    def __init__(
        self,
        *,
        answer: int = 202,
        delay_seconds: float = 0.0,
        batches: bool = False,
        answers: dict[bytes, int] | None = None,
    ) -> None:
        self.answer = answer
        self.delay_seconds = delay_seconds
        self.batches = batches
        self.answers = answers or {}
        self.bodies: list[bytes] = []
        self.by_request_id: Counter[str] = Counter()
        self.batch_sizes: list[int] = []  # every batch request, taken or not
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.post("/exchange/v1/envelopes")(self._receive)
        self.app.post("/exchange/v1/envelope-batches")(self._receive_batch)

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        if self.delay_seconds:
            time.sleep(self.delay_seconds)  # a slow peer widens the window for races
        with self._lock:
            if 200 <= self.answer < 300:
                self.bodies.append(body)
                self.by_request_id[request.headers.get("x-request-id", "")] += 1
        return Response(status_code=self.answer)

    async def _receive_batch(self, request: Request) -> Response:
        envelopes = [envelope.encode() for envelope in (await request.json())["envelopes"]]
        with self._lock:
            self.batch_sizes.append(len(envelopes))
            if not self.batches:
                return Response(status_code=404)
            results = []
            for envelope in envelopes:
                status = self.answers.get(envelope, 201)
                if 200 <= status < 300:
                    self.bodies.append(envelope)
                    results.append({"status": status, "acknowledgement": "ack"})
                else:
                    results.append({"status": status, "problem": {"detail": f"refused {status}"}})
        return JSONResponse({"results": results})
