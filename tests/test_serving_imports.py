"""Serving never imports training code: the ASGI app, in a fresh process, runs a turn through
the JSON API, and afterwards no learning module is loaded (beyond the app modules Django loads
for every installed app: models, admin) and no optimiser was ever built.

(`make lint` checks the same statically with import-linter; this checks what really runs.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

from assistant.models import ApiToken
from tests.servers import current_database_url

pytestmark = pytest.mark.django_db(transaction=True)

# What Django itself loads for every installed app: its package, AppConfig, models and admin.
APP_MODULES = {"learning", "learning.apps", "learning.models", "learning.admin", "simulator", "simulator.apps"}

PROBE = r"""
import asyncio, gc, json, sys
from assistant.asgi import application
from channels.testing import HttpCommunicator

async def one_turn():
    body = json.dumps({"text": "turn on the kitchen light"}).encode()
    headers = [
        (b"host", b"testserver"),
        (b"authorization", ("Token " + sys.argv[1]).encode()),
        (b"content-type", b"application/json"),
    ]
    return await HttpCommunicator(application, "POST", "/api/v1/turns", body=body, headers=headers).get_response(
        timeout=120
    )

response = asyncio.run(one_turn())
import torch  # already loaded by the encoder; imported here only to look for optimisers

optimisers = [o for o in gc.get_objects() if isinstance(o, torch.optim.Optimizer)]
print(json.dumps({
    "status": response["status"],
    "reply": json.loads(response["body"] or b"{}").get("response"),
    "encoder_loaded": "assistant.nlu.encoder" in sys.modules,
    "learning": sorted(m for m in sys.modules if m == "learning" or m.startswith("learning.")),
    "simulator": sorted(m for m in sys.modules if m == "simulator" or m.startswith("simulator.")),
    "scipy_optimize": "scipy.optimize" in sys.modules,
    "optimisers": len(optimisers),
}))
"""


def test_a_turn_through_the_asgi_app_imports_no_training_code(nlu_model, alice):
    token = ApiToken.objects.create(user=alice)
    env = {
        **os.environ,
        "DATABASE_URL": current_database_url(),
        "MODEL_DIR": str(settings.MODEL_DIR),
        "DJANGO_SETTINGS_MODULE": "assistant.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE, token.key],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["status"] == 201 and seen["reply"], seen
    assert seen["encoder_loaded"]  # the turn really ran the NLU
    assert set(seen["learning"]) | set(seen["simulator"]) <= APP_MODULES, "a trainer or the simulator was imported"
    assert not seen["scipy_optimize"]
    assert seen["optimisers"] == 0
