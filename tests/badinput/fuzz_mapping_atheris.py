"""Coverage-guided fuzzing of the mapping engine with atheris (libFuzzer). Not collected by pytest.

Two targets:

* ``yaml``    - arbitrary bytes as a mapping file: ``resolve_mapping`` must return a plan or issues,
  never raise.
* ``records`` - arbitrary JSON-like records through every shipped mapping: ``Mapping.to_canonical``
  may raise ``MappingError`` and nothing else.

Run (bounded; libFuzzer flags after the target name)::

    .venv/bin/pip install atheris            # a dev-only tool, not a project dependency
    .venv/bin/python tests/badinput/fuzz_mapping_atheris.py yaml -runs=50000 -artifact_prefix=/tmp/triad-fuzz-
    .venv/bin/python tests/badinput/fuzz_mapping_atheris.py records -max_total_time=60 \\
        -artifact_prefix=/tmp/triad-fuzz-

Without a corpus directory on the command line the ``yaml`` target starts from a temporary copy of the
shipped mappings (libFuzzer adds new inputs to its first corpus directory, so never pass ``mappings/``
itself). A crash prints the traceback and writes the input to ``<artifact_prefix>crash-<sha1>``;
replay it with ``... fuzz_mapping_atheris.py yaml /tmp/triad-fuzz-crash-<sha1>``. Until the findings listed in
``tests/badinput/README.md`` (M1-M3) are fixed, both targets stop at one of them within seconds.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["hub", "yaml"]):
    from hub.errors import MappingError
    from hub.mapping import load_mapping, shipped_mappings_dir
    from hub.mapping_model import resolve_mapping

ENTITIES = ("customer", "order", "contract", "payment", "opportunity", "approval")
MAPPINGS = [load_mapping(p, p.stem) for p in sorted(shipped_mappings_dir().glob("*/*.yaml"))]


def fuzz_yaml(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")     # the file readers refuse undecodable bytes before this
    entity = ENTITIES[len(data) % len(ENTITIES)]       # the seeds stay valid YAML; mutations vary the entity
    plan, issues = resolve_mapping(text, "fuzz.yaml", entity)
    assert (plan is None) == bool(issues), "a plan and issues at once, or neither"


def _value(fdp: atheris.FuzzedDataProvider, depth: int = 0) -> object:
    kind = fdp.ConsumeIntInRange(0, 8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return fdp.ConsumeInt(fdp.ConsumeIntInRange(1, 16))
    if kind == 3:
        return fdp.ConsumeRegularFloat()
    if kind in (4, 5):
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40))
    if kind == 6:
        return [_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    return {fdp.ConsumeUnicodeNoSurrogates(6): _value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))}


def fuzz_records(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mapping = MAPPINGS[fdp.ConsumeIntInRange(0, len(MAPPINGS) - 1)]
    paths = mapping.source_paths()
    raw = {}
    for _ in range(fdp.ConsumeIntInRange(0, len(paths) + 1)):
        name = paths[fdp.ConsumeIntInRange(0, len(paths) - 1)] if fdp.ConsumeBool() else fdp.ConsumeUnicode(8)
        raw[name] = _value(fdp)
    try:
        mapping.to_canonical(raw)
    except MappingError:
        pass
    except Exception as exc:
        raise AssertionError(f"{mapping.file}: {type(exc).__name__}: {exc} for {json.dumps(raw, default=str)[:500]}") \
            from exc


TARGETS = {"yaml": fuzz_yaml, "records": fuzz_records}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer flags, e.g. -runs=50000]")
    name = sys.argv.pop(1)
    if name == "yaml" and not any(not a.startswith("-") for a in sys.argv[1:]):
        seeds = tempfile.mkdtemp(prefix="triad-fuzz-seeds-")
        for n, path in enumerate(sorted(shipped_mappings_dir().glob("*/*.yaml"))):
            shutil.copyfile(path, f"{seeds}/{n:03d}-{path.parent.name}-{path.name}")
        sys.argv.append(seeds)
    atheris.Setup(sys.argv, TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
