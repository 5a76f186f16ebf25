"""State that crosses workers through Redis (rule state, open incidents), as tagged JSON: no pickle.

What it carries: None, bools, numbers (inf and nan too), strings, lists, tuples, dicts (any encodable keys),
datetimes, enums, numpy arrays and scalars, and dataclasses of gridwatch's own packages (`rules.`, `core.`,
`incidents.`). A dataclass or enum is named by module and qualified name and found among the modules already
imported, never imported on demand, so a payload can only build the types the process already runs with.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import sys
from datetime import datetime
from typing import Any

import numpy as np

ALLOWED_PREFIXES = ("rules.", "core.", "incidents.")


class CodecError(ValueError):
    """A payload this codec did not write, or a type it may not build."""


def encode(value: object) -> bytes:
    return json.dumps(_enc(value), separators=(",", ":")).encode()


def decode(data: bytes) -> object:
    return _dec(json.loads(data))


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _enc(v: object) -> Any:
    if v is None or isinstance(v, bool | str | int):
        return v
    if isinstance(v, enum.Enum):
        return {"$e": _name(type(v)), "v": _enc(v.value)}
    if isinstance(v, float):
        return v
    if isinstance(v, np.ndarray):
        data = np.ascontiguousarray(v)
        return {"$nd": data.dtype.str, "s": list(data.shape), "b": base64.b64encode(data.tobytes()).decode()}
    if isinstance(v, np.generic):
        return _enc(v.item())
    if isinstance(v, datetime):
        return {"$dt": v.isoformat()}
    if isinstance(v, tuple):
        return {"$t": [_enc(x) for x in v]}
    if isinstance(v, list):
        return [_enc(x) for x in v]
    if isinstance(v, dict):
        return {"$d": [[_enc(k), _enc(x)] for k, x in v.items()]}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        fields = {f.name: _enc(getattr(v, f.name)) for f in dataclasses.fields(v)}
        return {"$dc": _name(type(v)), "f": fields}
    raise CodecError(f"cannot encode a {type(v).__name__} for Redis")


def _resolve(name: str) -> type:
    module_name, _, qualname = name.partition(":")
    if not module_name.startswith(ALLOWED_PREFIXES) or module_name not in sys.modules:
        raise CodecError(f"type {name!r}: not one of gridwatch's loaded types")
    obj: Any = sys.modules[module_name]
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if not isinstance(obj, type):
        raise CodecError(f"type {name!r}: not found")
    return obj


def _dec(v: Any) -> object:
    if isinstance(v, list):
        return [_dec(x) for x in v]
    if not isinstance(v, dict):
        return v
    if "$nd" in v:
        array = np.frombuffer(base64.b64decode(v["b"]), dtype=np.dtype(v["$nd"])).reshape(v["s"])
        return array.copy()
    if "$t" in v:
        return tuple(_dec(x) for x in v["$t"])
    if "$d" in v:
        return {_dec(k): _dec(x) for k, x in v["$d"]}
    if "$dt" in v:
        return datetime.fromisoformat(v["$dt"])
    if "$e" in v:
        cls = _resolve(v["$e"])
        if not issubclass(cls, enum.Enum):
            raise CodecError(f"{v['$e']!r} is not an enum")
        return cls(_dec(v["v"]))
    if "$dc" in v:
        cls = _resolve(v["$dc"])
        if not dataclasses.is_dataclass(cls):
            raise CodecError(f"{v['$dc']!r} is not a dataclass")
        obj = object.__new__(cls)
        for f in dataclasses.fields(cls):
            object.__setattr__(obj, f.name, _dec(v["f"][f.name]))
        return obj
    raise CodecError(f"unknown payload {sorted(v)!r}")
