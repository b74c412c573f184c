"""Start a LyCORIS Eval grid on a running WebUI (started with --api), follow it with a
progress bar, score it, and print the summary table. Standard library only.

    python examples/headless_sweep.py --url http://127.0.0.1:7860 \\
        --checkpoint v1-5-pruned-emaonly --adapter my_style_loha --weights 0.5,0.8,1 \\
        --prompt "[trigger] le_style, a castle" --prompt "[alter] le_style, a cat" \\
        --seeds 4 --reference outputs/refs/my_style [--auth user:password]

Resume an interrupted sweep with --run-id RUN_ID (finished images are kept).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import NoReturn

PREFIX = "/lycoris-eval/v1"


def fail(message: str) -> NoReturn:
    """One line on stderr and exit code 2, as ``python -m lycoris_eval`` does for bad input."""
    print(f"lycoris-eval: error: {message}", file=sys.stderr)
    sys.exit(2)


class Client:
    def __init__(self, url: str, auth: str | None) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            fail(f"--url {url}: give the WebUI's address, e.g. http://127.0.0.1:7860")
        self.base = url
        self.url = url.rstrip("/") + PREFIX
        self.headers = {"Content-Type": "application/json"}
        if auth:
            self.headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()

    def call(self, method: str, path: str, body: dict | None = None) -> dict | list:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = " ".join(exc.read().decode(errors="replace").split())
            if 400 <= exc.code < 500:  # the request was refused: bad input
                fail(f"{method} {path}: HTTP {exc.code}: {detail}")
            sys.exit(f"lycoris-eval: error: {method} {path}: HTTP {exc.code}: {detail}")
        except (urllib.error.URLError, OSError) as exc:  # refused, unknown host, timed out, dropped
            reason = getattr(exc, "reason", None) or exc
            text = getattr(reason, "strerror", None) or str(reason)
            fail(f"cannot reach the WebUI at {self.base}: {text}; start it with --api")


def bar(done: int, total: int, text: str, eta: float | None) -> None:
    width = 30
    filled = int(width * done / total) if total else 0
    eta_text = f" ETA {eta:.0f}s" if eta is not None else ""
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {text[:50]:<50}{eta_text}")
    sys.stderr.flush()


def table(report: dict) -> str:
    metrics = list(report["metrics"])
    lines = ["checkpoint | adapter | type | weight | " + " | ".join(metrics) + " | rank"]
    for row in report["summary"]:
        values = " | ".join("-" if row[m] is None else f"{row[m]:.4g}" for m in metrics)
        rank = "-" if row["overall_rank"] is None else f"{row['overall_rank']:.2f}"
        lines.append(
            f"{row['checkpoint']} | {row['adapter'] or '(baseline)'} | {row['adapter_type'] or '-'} | "
            f"{row['weight']} | {values} | {rank}"
        )
    lines += [f"trust: {t['verdict']}" for t in report["trust"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:7860")
    parser.add_argument("--auth", help="user:password when the WebUI runs with --api-auth")
    parser.add_argument("--checkpoint", action="append", default=[])
    parser.add_argument("--adapter", action="append", required=True)
    parser.add_argument("--weights", default="0.5,0.75,1")
    parser.add_argument("--prompt", action="append", required=True)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--first-seed", type=int, default=-1)
    parser.add_argument("--reference")
    parser.add_argument("--distractor", action="append", default=[])
    parser.add_argument("--run-name", default="headless-sweep")
    parser.add_argument("--run-id")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    client = Client(args.url, args.auth)
    body = {
        "checkpoints": args.checkpoint,
        "adapters": args.adapter,
        "weights": [float(w) for w in args.weights.split(",")],
        "prompts": args.prompt,
        "seeds": {"count": args.seeds, "first": args.first_seed},
        "references": [args.reference] if args.reference else [],
        "distractors": args.distractor,
        "score": bool(args.reference),
        "run_name": args.run_name,
        "run_id": args.run_id,
        "base": {"steps": args.steps},
    }
    job = client.call("POST", "/grid", body)
    while True:
        status = client.call("GET", f"/jobs/{job['job_id']}")
        bar(status["images_done"], status["images_total"], status["current"], status["eta_s"])
        if status["state"] in ("done", "failed", "cancelled"):
            break
        time.sleep(2)
    sys.stderr.write("\n")
    if status["state"] != "done":
        sys.exit(f"job {status['state']}: {status.get('error') or status.get('result')}")
    run_id = status["run_id"]
    if not args.reference:
        client.call("POST", "/evaluate", {"run_id": run_id})
    print(table(client.call("GET", f"/runs/{run_id}/report")))
    print(f"run {run_id}: {args.url}{PREFIX}/runs/{run_id}/scores.csv")


if __name__ == "__main__":
    main()
