"""A test RTSP server (run by the SYSTEM python3, which has python3-gi): serves an audio file on 127.0.0.1.

usage: /usr/bin/python3 rtsp_server.py PORT FILE  -> rtsp://127.0.0.1:PORT/audio, the file looped, PCMU at 8 kHz
... prints "ready" once it listens.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer

port, path = sys.argv[1], sys.argv[2]
Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(f'( multifilesrc location="{path}" loop=true ! decodebin ! audioconvert ! audioresample ! '
                   'audio/x-raw,rate=16000,channels=1 ! rtpL16pay name=pay0 pt=96 )')
factory.set_shared(True)
server.get_mount_points().add_factory("/audio", factory)
server.attach(None)
print("ready", flush=True)
GLib.MainLoop().run()
