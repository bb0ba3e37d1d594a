"""A small Singer tap for the singer connector's tests: JSON Lines files as streams, resumable by line.

Config: ``{"streams": {"<name>": "<file.jsonl>"}, "state_every": 10, "pause": 0.0, "fail_after": null,
"fail_message": "...", "stdout_noise": false, "key": "id", "stream_names": {"<name>": "<label>"}}``.
``--state`` takes ``{"bookmarks": {"<name>": {"line": N}}}`` and starts each stream after line N; a
STATE goes out every ``state_every`` records of a stream (after a ``pause`` in seconds, so a test can
kill the tap in between) and at each stream's end. ``--catalog`` selects streams by their root metadata.
``fail_after`` ends the process with code 3 after that many records, writing ``fail_message`` to
stderr. ``stream_names`` gives a stream a catalog ``stream`` name (``<label>``) other than its
``tap_stream_id`` (``<name>``, which bookmarks use); its SCHEMA and RECORD messages carry the label, as
singer-python taps of database schemas do. A line of a file that is not a JSON object goes out as the
RECORD's ``record`` as it is. Each run appends its start state to ``<first file>.runs`` (tests check
where a run started).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def catalog(config: dict) -> dict:
    return {"streams": [{
        "tap_stream_id": name, "stream": config.get("stream_names", {}).get(name, name),
        "schema": {"type": "object", "properties": {config.get("key", "id"): {"type": "string"}}},
        "metadata": [{"breadcrumb": [], "metadata": {"inclusion": "available",
                                                     "table-key-properties": [config.get("key", "id")]}},
                     {"breadcrumb": ["properties", config.get("key", "id")],
                      "metadata": {"inclusion": "automatic"}}]} for name in config["streams"]]}


def selected(doc: dict | None, names: list[str]) -> list[str]:
    if doc is None:
        return names
    chosen = []
    for entry in doc["streams"]:
        root = next(m["metadata"] for m in entry["metadata"] if m["breadcrumb"] == [])
        if root.get("selected"):
            chosen.append(entry["tap_stream_id"])
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--state")
    parser.add_argument("--catalog")
    parser.add_argument("--discover", action="store_true")
    args = parser.parse_args()
    config = json.loads(Path(args.config).read_text(encoding="utf-8"))
    print(f"fake tap starting with secret {config.get('password', '-')}", file=sys.stderr)
    if args.discover:
        emit(catalog(config))
        return 0
    state = json.loads(Path(args.state).read_text(encoding="utf-8")) if args.state else {}
    first = Path(next(iter(config["streams"].values())))
    with open(f"{first}.runs", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(state) + "\n")
    doc = json.loads(Path(args.catalog).read_text(encoding="utf-8")) if args.catalog else None
    bookmarks = dict(state.get("bookmarks", {}))
    every, pause = int(config.get("state_every", 10)), float(config.get("pause", 0))
    sent = 0
    for name in selected(doc, list(config["streams"])):
        label = config.get("stream_names", {}).get(name, name)
        emit({"type": "SCHEMA", "stream": label, "schema": {"type": "object"},
              "key_properties": [config.get("key", "id")]})
        if config.get("stdout_noise"):
            print("this line is not a Singer message")
        start = int(bookmarks.get(name, {}).get("line", 0))
        lines = Path(config["streams"][name]).read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines[start:], start + 1):
            emit({"type": "RECORD", "stream": label, "record": json.loads(line)})
            sent += 1
            if config.get("fail_after") and sent >= config["fail_after"]:
                print(config.get("fail_message", "failing on purpose"), file=sys.stderr)
                return 3
            if n % every == 0:
                time.sleep(pause)
                bookmarks[name] = {"line": n}
                emit({"type": "STATE", "value": {"bookmarks": dict(bookmarks)}})
        bookmarks[name] = {"line": len(lines)}
        emit({"type": "STATE", "value": {"bookmarks": dict(bookmarks)}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
