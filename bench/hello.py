"""The baseline: an aiohttp hello-world JSON endpoint.

`python -m bench.hello PORT` uses asyncio's default loop — the baseline of PERF_NOTES and of
every share in bench/RESULTS.md. `python -m bench.hello PORT --uvloop` is the same on uvloop,
shown as a reference row (what the loop alone is worth).
"""

import sys

from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    return web.json_response({"status": "pass"})


def main() -> None:
    port = int(sys.argv[1])
    app = web.Application()
    app.router.add_get("/", hello)
    loop = None
    if "--uvloop" in sys.argv:
        import uvloop

        loop = uvloop.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
