"""A bare Sanic app with one small JSON endpoint: the framework baseline for bench/rest.py.

python bench/_bare_sanic.py PORT
"""

import sys

from sanic import Sanic
from sanic.response import json

app = Sanic("bare")


@app.get("/ticker")
async def ticker(request):
    return json({"data": {"symbol": "BTCUSDT", "price": "65000.00000000"}, "requestId": "x", "timestamp": 0})


@app.get("/health")
async def health(request):
    return json({"status": "ok"})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), single_process=True, motd=False, access_log=False)
