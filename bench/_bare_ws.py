"""A bare Sanic WebSocket fan-out: the framework baseline for bench/ws_fanout.py.

One Redis pub/sub reader and a loop of `await ws.send(text)` over the connected sockets: what the
gateway's hub does without queues, conflation, framing once, auth or limits.

    python bench/_bare_ws.py PORT REDIS_URL CHANNEL
"""

import asyncio
import os
import resource
import sys

import redis.asyncio as aioredis
from sanic import Sanic, text

app = Sanic("bare_ws")
clients: set = set()


@app.get("/health")
async def health(request):
    return text("ok")


@app.get("/rss")
async def rss(request):
    with open("/proc/self/statm") as f:
        return text(str(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")))


@app.websocket("/ws/trades/<symbol:str>")
async def trades(request, ws, symbol):
    clients.add(ws)
    try:
        async for _ in ws:
            pass
    finally:
        clients.discard(ws)


@app.before_server_start
async def start_reader(app_):
    async def read():
        client = aioredis.Redis.from_url(sys.argv[2])
        pubsub = client.pubsub()
        await pubsub.subscribe(sys.argv[3])
        async for message in pubsub.listen():
            if message["type"] == "message":
                data = message["data"].decode()
                for ws in list(clients):
                    try:
                        await ws.send(data)
                    except Exception:
                        clients.discard(ws)

    app_.ctx.reader = asyncio.create_task(read())


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    app.run(host="127.0.0.1", port=int(sys.argv[1]), single_process=True, motd=False, access_log=False)
