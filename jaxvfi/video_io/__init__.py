r"""Image, image-sequence and video I/O for the inference tools (`jaxvfi.interpolate`, `enhance`, `zoom`).

Everything here goes through libraries: Pillow for still images, PyAV (FFmpeg's own libraries: libavformat,
libavcodec, libswscale) for videos. What a file is, is FFmpeg's call: any container it probes as holding a video
stream (mp4, mkv, mov, webm, avi, ts/m2ts, flv, 3gp, m4v, an animated gif, ...) is read; no extension list.

One job a module, each importing only those above it in this list:
  images   still images: reading, headers, the scene score of two frames, a folder's images in natural order.
  probe    a video's container, streams and exact timing (`probe`, `VideoInfo`); opening and decoding a stream.
  reader   decoding a video's frames with their exact times (`VideoReader`).
  writer   choosing and proving an encoder, pixel format and audio handling (`plan_video_output`); encoding with
           exact timestamps and copied audio through a temporary file (`VideoWriter`).
  outputs  a sequence's output, a video or a folder of PNGs, checked before any model loads (`plan_output`) and
           written whole or not at all (`open_sink`, `StagedFolder`).
The names below are this package's interface; `video_io.probe` is the function (its module is
`jaxvfi.video_io.probe` in `sys.modules`).

A tool that writes a sequence (interpolate, enhance, zoom) calls `plan_output` before loading its model (every
refusal is then one error line and nothing is written) and `open_sink` after it:

  info = video_io.probe(src)
  plan = video_io.plan_output(out, w, h, time_base=1 / rate, rate=rate, inputs=[src], source=info)  # None: folder
  sink = video_io.open_sink(out, plan, w, h, time_base=1 / rate, rate=rate, source=info)   # after the model loads
  for k, image in enumerate(images): sink.write(image, k / rate)
  sink.commit(n / rate)                                                      # sink.abort() on any error
"""
from jaxvfi.video_io.images import check_file
from jaxvfi.video_io.images import image_header
from jaxvfi.video_io.images import list_frame_files
from jaxvfi.video_io.images import read_frame
from jaxvfi.video_io.images import scene_score
from jaxvfi.video_io.images import SCENE_THRESHOLD
from jaxvfi.video_io.outputs import check_not_an_input
from jaxvfi.video_io.outputs import check_writable
from jaxvfi.video_io.outputs import FolderSink
from jaxvfi.video_io.outputs import open_sink
from jaxvfi.video_io.outputs import output_is_video
from jaxvfi.video_io.outputs import OWN_FRAME_NAMES
from jaxvfi.video_io.outputs import plan_output
from jaxvfi.video_io.outputs import StagedFolder
from jaxvfi.video_io.probe import AudioTrack
from jaxvfi.video_io.probe import format_rate
from jaxvfi.video_io.probe import parse_rate
from jaxvfi.video_io.probe import probe
from jaxvfi.video_io.probe import VideoInfo
from jaxvfi.video_io.reader import VideoReader
from jaxvfi.video_io.writer import ALPHA_ENCODERS
from jaxvfi.video_io.writer import ENCODER_OPTIONS
from jaxvfi.video_io.writer import output_format_name
from jaxvfi.video_io.writer import OutputPlan
from jaxvfi.video_io.writer import plan_video_output
from jaxvfi.video_io.writer import VideoWriter
