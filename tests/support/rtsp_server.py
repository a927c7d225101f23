"""A local RTSP server for tests: a generated H.264 stream, served by Debian's gst-rtsp-server.

Runs under the system Python (``/usr/bin/python3``, which has PyGObject), not the venv:
``make rtsp-server`` installs the packages. Prints ``ready`` once it listens; stops on SIGTERM.

    /usr/bin/python3 tests/support/rtsp_server.py --port 8554 --path /live [--user u --password p]
                                                  [--video people.mp4]
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/live")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--user", default="")
    parser.add_argument("--password", default="")
    parser.add_argument("--video", help="an H.264 MP4 to serve instead of the generated pattern")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    if args.video:
        # The file's own H.264, unchanged (qtdemux gives AVC, which rtph264pay takes), in real time.
        factory.set_launch(
            f"( filesrc location={args.video} ! qtdemux ! rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
    else:
        # A moving ball, so a decoder sees real motion; a key frame every second.
        factory.set_launch(
            f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={args.width},height={args.height},"
            f"framerate={args.fps}/1 ! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast "
            f"key-int-max={args.fps} ! rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
    factory.set_shared(True)
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "viewer")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("viewer", "media.factory.access", True)
        permissions.add_permission_for_role("viewer", "media.factory.construct", True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{args.port}")

    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
