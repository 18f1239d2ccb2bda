"""A peer that receives envelopes over real HTTP and remembers what it got, so a test can tell
whether each one arrived exactly once."""

import threading
import time
from collections import Counter

from fastapi import FastAPI, Request, Response


class Receiver:
    def __init__(self, *, answer: int = 202, delay_seconds: float = 0.0) -> None:
        self.answer = answer
        self.delay_seconds = delay_seconds
        self.bodies: list[bytes] = []
        self.by_request_id: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.post("/exchange/v1/envelopes")(self._receive)

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        if self.delay_seconds:
            time.sleep(self.delay_seconds)  # a slow peer widens the window for races
        with self._lock:
            if 200 <= self.answer < 300:
                self.bodies.append(body)
                self.by_request_id[request.headers.get("x-request-id", "")] += 1
        return Response(status_code=self.answer)
