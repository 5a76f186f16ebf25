"""A synthetic city fleet for tests and benchmarks: every field used, varied from row to row."""

from __future__ import annotations

from ingest.cameras import Camera

_WINDOWS = ((), ("mon-fri 07:00-19:00",), ("22:00-06:00", "sat,sun 09:00-17:30"))


def make_fleet(count: int) -> list[Camera]:
    """`count` valid cameras: passwords as `${VAR}` references, GB/T 28181 ids, tags, windows, burst rows."""
    cameras = []
    for i in range(count):
        burst = i % 7 == 0
        row: dict[str, object] = {
            "id": f"cam-{i:06d}",
            "name": f'东门人行道 {i}, "north"' if i % 3 else "",
            "url": f"rtsp://viewer:${{CAM_PW_{i % 50}}}@10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}:554/ch1",
            "gb_device_id": f"3101010000118{i:07d}",
            "gb_channel_id": f"3101010000132{i:07d}",
            "grid_code": f"310101{i % 1000:06d}",
            "lon": 121.0 + (i % 10_000) / 10_000,
            "lat": 31.0 + (i % 7919) / 7919,
            "tags": ("gate", f"zone-{i % 13}") if i % 2 else (),
            "enabled": i % 11 != 0,
            "revisit_s": 30.0 + i % 5 * 15,
            "priority": i % 10,
            "arming": _WINDOWS[i % 3],
        }
        if burst:
            row |= {"mode": "burst", "burst_frames": 4 + i % 8, "burst_span_s": 2.5}
        cameras.append(Camera.model_validate(row))
    return cameras
