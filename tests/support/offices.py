"""An office that signs recommendations with a real ES256 key, as the CLI does."""

import copy
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.documents import INTAKE_AUDIENCE, RECOMMENDATION_TYP
from shared.signing import KeyPair

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def example(name: str = "finding") -> dict[str, Any]:
    return json.loads((EXAMPLES / f"recommendation-{name}.json").read_text())


@dataclass
class OfficeSigner:
    office_id: str
    key: KeyPair = field(default_factory=KeyPair.generate)

    def payload(self, recommendation: dict | None = None, **claims: Any) -> dict[str, Any]:
        payload = {
            "jti": str(uuid.uuid4()),
            "iss": self.office_id,
            "aud": INTAKE_AUDIENCE,
            "iat": int(time.time()),
            "recommendation": copy.deepcopy(recommendation or example()),
        }
        payload.update(claims)
        return payload

    def sign(self, payload: dict[str, Any] | None = None, **claims: Any) -> str:
        return self.key.sign(payload or self.payload(**claims), RECOMMENDATION_TYP)
