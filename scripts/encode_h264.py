"""Re-encode a clip to H.264 (no B-frames, keyframe every 20 frames) for the demo cameras.

Used by `make media` when no media mirror is set: Debian's opencv-doc `vtest.avi` is MS-MPEG4v3, which the RTSP
path does not carry; this gives the same footage as the shared `vtest_h264.mp4`.
"""

from __future__ import annotations

import sys
from fractions import Fraction

import av


def encode(src: str, dst: str, gop: int = 20) -> int:
    with av.open(src) as inp, av.open(dst, "w") as out:
        in_stream = inp.streams.video[0]
        rate = in_stream.average_rate or Fraction(10)
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height = in_stream.codec_context.width, in_stream.codec_context.height
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": str(gop), "bf": "0", "profile": "main", "crf": "23", "preset": "medium"}
        count = 0
        for frame in inp.decode(in_stream):
            frame.pts = None
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                out.mux(packet)
            count += 1
        for packet in stream.encode(None):
            out.mux(packet)
    return count


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: encode_h264.py SRC DST")
    print(f"{encode(sys.argv[1], sys.argv[2])} frames -> {sys.argv[2]}")
