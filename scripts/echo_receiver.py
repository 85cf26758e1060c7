"""A webhook receiver for trying storehooks out: prints every notification and answers 200.

    python3 scripts/echo_receiver.py [PORT]          (default 9000)

With a secret (`--secret whsec_...`, needs `pip install standardwebhooks`) it also checks
each signature, over the raw body of a JSON, XML or form notification alike, and answers
400 when it does not match (docs/receiving.md shows a receiver that parses them too).
"""

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int, nargs="?", default=9000)
    parser.add_argument("--secret", help="the webhook's whsec_ secret, to verify signatures")
    args = parser.parse_args()
    verifier: Any = None
    if args.secret:
        from standardwebhooks.webhooks import Webhook

        verifier = Webhook(args.secret)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            status, verdict = 200, "not checked"
            if verifier is not None:
                try:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    # json_parse=False: the library would parse the body as JSON after
                    # checking it, and so throw on every XML and form notification.
                    verifier.verify(body, headers, json_parse=False)
                    verdict = "valid"
                except Exception as exc:
                    status, verdict = 400, f"INVALID ({exc})"
            print(
                json.dumps(
                    {
                        "method": self.command,
                        "path": self.path,
                        "content-type": self.headers.get("content-type"),
                        "webhook-id": self.headers.get("webhook-id"),
                        "signature": verdict,
                        "body": body.decode("utf-8", errors="replace"),
                    },
                    indent=2,
                ),
                flush=True,
            )
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        do_POST = do_PUT = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass

    print(f"listening on http://127.0.0.1:{args.port}/", flush=True)
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
