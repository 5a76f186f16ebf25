#!/usr/bin/python3
"""A real RTSP server for tests and demos: Debian's GStreamer RTSP server serving one H.264 MP4 on N paths.

Run with Debian's `/usr/bin/python3` (the `gi` module is not in the virtualenv):

    /usr/bin/python3 tests/support/rtsp_server.py --port 0 --file vtest_h264.mp4 --paths 4

Every path `/cam0` .. `/cam{N-1}` behaves like a live camera: the file's H.264 access units are sent as they
are (no re-encoding), looped forever, paced in real time, with timestamps that keep increasing across loops.
Each path has its own live position (its own start time), and a client that connects joins at the current
position, so it waits for the next keyframe like it would on a real camera. `--password PW` also mounts
`/auth`, which requires basic auth `admin` / PW. Prints `READY <port>` once listening; exits on SIGTERM.
"""

import argparse
import signal
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

AUTH_USER = "admin"
AUTH_PATH = "/auth"


class Clip:
    """The file's access units, read once with qtdemux, kept in memory and shared by every path."""

    def __init__(self, path):
        pipeline = Gst.parse_launch(
            'filesrc name=src ! qtdemux ! video/x-h264 ! appsink name=sink sync=false max-buffers=0'
        )
        pipeline.get_by_name("src").set_property("location", path)
        sink = pipeline.get_by_name("sink")
        pipeline.set_state(Gst.State.PLAYING)
        self.units = []  # (GLib.Bytes, is_keyframe)
        self.caps = None
        while True:
            sample = sink.emit("pull-sample")
            if sample is None:
                break
            if self.caps is None:
                self.caps = sample.get_caps()
            buf = sample.get_buffer()
            ok, info = buf.map(Gst.MapFlags.READ)
            if not ok:
                raise RuntimeError("cannot map a buffer of " + path)
            self.units.append((GLib.Bytes.new(bytes(info.data)), not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)))
            buf.unmap(info)
        bus_error = pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
        pipeline.set_state(Gst.State.NULL)
        if bus_error is not None or not self.units:
            detail = bus_error.parse_error()[0].message if bus_error is not None else "no H.264 frames"
            raise RuntimeError(path + ": " + detail)
        structure = self.caps.get_structure(0)
        ok, num, den = structure.get_fraction("framerate")
        if not ok or num <= 0:
            num, den = 10, 1
        self.frame_ns = Gst.SECOND * den // num


class LoopingFactory(GstRtspServer.RTSPMediaFactory):
    """One media per client (shared=false); each starts at the path's current live position."""

    def __init__(self, clip, started):
        super().__init__()
        self.clip = clip
        self.started = started
        self.set_shared(False)
        self.set_launch(
            "( appsrc name=src format=time is-live=false block=false max-bytes=400000 "
            "! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
        )
        self.connect("media-configure", self._on_media_configure)

    def _on_media_configure(self, _factory, media):
        appsrc = media.get_element().get_by_name_recurse_up("src")
        appsrc.set_property("caps", self.clip.caps)
        position = int((time.monotonic() - self.started) * Gst.SECOND) // self.clip.frame_ns
        state = {"index": position % len(self.clip.units), "pts": 0}
        appsrc.connect("need-data", self._on_need_data, state)

    def _on_need_data(self, appsrc, _length, state):
        data, keyframe = self.clip.units[state["index"]]
        buf = Gst.Buffer.new_wrapped_bytes(data)
        buf.pts = buf.dts = state["pts"]
        buf.duration = self.clip.frame_ns
        if not keyframe:
            buf.set_flags(Gst.BufferFlags.DELTA_UNIT)
        state["index"] = (state["index"] + 1) % len(self.clip.units)
        state["pts"] += self.clip.frame_ns
        appsrc.emit("push-buffer", buf)


class PathAuth(GstRtspServer.RTSPAuth):
    """Anonymous clients may open every path but `protected`: a request for it without valid credentials is
    answered 401 with a basic challenge, so clients such as FFmpeg retry with the URL's user and password."""

    def __init__(self, protected):
        super().__init__()
        self.protected = protected

    def do_authenticate(self, ctx):
        if not GstRtspServer.RTSPAuth.do_authenticate(self, ctx):
            return False
        path = ctx.uri.abspath if ctx.uri is not None else ""
        if path.rstrip("/") != self.protected:
            return True
        role = ctx.token.get_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE) if ctx.token else None
        return role == "user"


def add_auth(server, factories, protected, path, password):
    """Every path allows role `anonymous` (the default token) and `user`; `protected` allows only `user`."""
    auth = PathAuth(path)
    anonymous = GstRtspServer.RTSPToken()
    anonymous.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "anonymous")
    auth.set_default_token(anonymous)
    user = GstRtspServer.RTSPToken()
    user.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(AUTH_USER, password), user)
    allow = "media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
    for factory in factories:
        factory.add_role_from_structure(Gst.Structure.from_string("user, " + allow)[0])
        if factory is not protected:
            factory.add_role_from_structure(Gst.Structure.from_string("anonymous, " + allow)[0])
    server.set_auth(auth)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--file", required=True, help="an MP4 with H.264 video")
    parser.add_argument("--paths", type=int, default=1, help="mounts /cam0 .. /cam{N-1}")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--password", default=None, help="also mount /auth, basic auth admin/PASSWORD")
    args = parser.parse_args()

    Gst.init(None)
    clip = Clip(args.file)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.bind)
    server.set_service(str(args.port))  # "0": the kernel picks a free port
    mounts = server.get_mount_points()
    factories = []
    for i in range(args.paths):
        factories.append(LoopingFactory(clip, time.monotonic() - 7.3 * i))
        mounts.add_factory("/cam%d" % i, factories[-1])
    if args.password:
        protected = LoopingFactory(clip, time.monotonic())
        factories.append(protected)
        mounts.add_factory(AUTH_PATH, protected)
        add_auth(server, factories, protected, AUTH_PATH, args.password)
    if server.attach(None) == 0:
        print("cannot listen on %s:%d" % (args.bind, args.port), file=sys.stderr)
        return 1
    port = server.get_bound_port()

    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    print("READY %d" % port, flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
