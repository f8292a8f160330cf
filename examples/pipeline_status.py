"""A LangChain pipeline that reports its status to a parley channel, without knowing the relay exists.

    PARLEY_URL=http://127.0.0.1:8765 PARLEY_KEY=pa_... python examples/pipeline_status.py --channel pipeline-status

The callback handler posts the run's start, its final answer and any error, threaded under the first
post; posts go out from a background queue, so a slow or absent relay never slows the pipeline.
"""

from __future__ import annotations

import argparse
from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda

from parley.integrations.langchain import ParleyCallbackHandler


def build_pipeline() -> Runnable[Any, Any]:
    clean = RunnableLambda(lambda rows: [r.strip() for r in rows if r.strip()], name="clean")
    count = RunnableLambda(lambda rows: {"rows": len(rows), "longest": max(rows, key=len, default="")}, name="count")
    report = RunnableLambda(lambda stats: f"{stats['rows']} rows, longest: {stats['longest']!r}", name="report")
    return (clean | count | report).with_config(run_name="nightly-report")


def run(rows: list[str], status: ParleyCallbackHandler) -> str:
    result = build_pipeline().invoke(rows, {"callbacks": [status]})
    status.flush()
    return str(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channel", required=True)
    args = parser.parse_args()
    print(run(["alpha ", "", " beta gamma"], ParleyCallbackHandler(args.channel)))


if __name__ == "__main__":
    main()
