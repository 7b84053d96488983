"""The HTTP ceiling for bench/intake.py: aiohttp reading the body and answering 201, nothing else."""

import sys

from aiohttp import web


async def events(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=201, reason="All 1 out of 1 events were accepted.")


try:  # the same event loop the sandbox runs on, so the ceiling is a fair one
    import uvloop

    uvloop.install()
except ImportError:
    pass

app = web.Application(client_max_size=16 * 1024 * 1024)
app.router.add_post("/v1/events", events)
web.run_app(
    app,
    host="127.0.0.1",
    port=int(sys.argv[1]),
    print=lambda *_: print("ready", flush=True),
    access_log=None,
)
