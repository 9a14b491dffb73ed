"""Video files in and out with PyAV (FFmpeg).

Frames leave this module upright (the stream's rotation metadata applied) as uint8 H×W×3 RGB, each with the
timestamp it had in the file; frames come back in the same way and are written with those timestamps, the same
rotation metadata and colour tags, so a translated video keeps its frame count, rate (variable ones too),
duration and orientation. Audio and subtitle streams never pass through a decoder: their packets are copied.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import av
import numpy as np

from cycletrans.errors import InputError

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".m2ts",
                              ".mts", ".wmv", ".flv", ".3gp", ".ogv"})
SIDE_STREAM_TYPES = ("audio", "subtitle")  # copied packet for packet; data/attachment streams are not carried

# Most players only play 4:2:0 H.264; it needs even sides, so odd-sized videos use 4:4:4 (same size) when the
# encoder has it and are padded by one repeated row/column when it has not.
PIXEL_FORMAT = "yuv420p"
ODD_SIZE_PIXEL_FORMAT = "yuv444p"


@dataclass(frozen=True)
class VideoInfo:
    """What a caller needs to know before decoding: sizes are as displayed (rotation applied)."""

    path: Path
    width: int
    height: int
    frames: int  # from the container; 0 when it does not say
    rate: Fraction | None  # average frame rate
    time_base: Fraction
    duration: float | None  # seconds
    rotation: int  # degrees counter-clockwise, a multiple of 90
    codec: str
    side_streams: tuple[str, ...]  # e.g. ("audio aac 48000 Hz", "subtitle mov_text")


@dataclass
class TimedFrame:
    """An upright RGB frame with the timestamp it had in the source, in `time_base` units."""

    rgb: np.ndarray
    pts: int
    time_base: Fraction
    duration: int = 0  # in time_base units; 0 = unknown

    @property
    def seconds(self) -> float:
        return float(self.pts * self.time_base)


def _open_input(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a video")
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a readable video ({_reason(err)})") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{path}: has no video stream")
    return container


def _reason(err: Exception) -> str:
    return getattr(err, "strerror", None) or str(err).splitlines()[0]


def _rotation(stream: av.video.stream.VideoStream, first: av.VideoFrame | None) -> int:
    """Display rotation in degrees counter-clockwise, snapped to a multiple of 90 (FFmpeg exports it per frame
    from the stream's display matrix; older files carry a `rotate` tag, clockwise)."""
    degrees = first.rotation if first is not None else 0
    if not degrees and "rotate" in stream.metadata:
        try:
            degrees = -int(float(stream.metadata["rotate"]))
        except ValueError:
            degrees = 0
    return int(round(degrees / 90.0)) * 90 % 360


def _describe(stream: av.stream.Stream) -> str:
    name = stream.codec_context.name if stream.codec_context else "unknown"
    if stream.type == "audio":
        return f"audio {name} {stream.codec_context.sample_rate} Hz"
    return f"{stream.type} {name}"


def fit_size(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    """(width, height) scaled down so the longer side is at most `max_size`, aspect kept, sides even (rounded
    down, so that neither side ends up over `max_size`)."""
    if not max_size or max(width, height) <= max_size:
        return width, height
    scale = max_size / max(width, height)
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


class VideoReader:
    """Decodes the first video stream of a file into upright `TimedFrame`s, optionally scaled to `max_size`.

    Use as a context manager. Damaged packets are skipped and counted in `damaged`, so one bad packet does not
    lose the rest of a long video.
    """

    def __init__(self, path: str | os.PathLike, max_size: int | None = None):
        self.path = Path(path)
        self.container = _open_input(self.path)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"  # frame + slice threads: decoding is rarely the bottleneck then
        self.damaged = 0
        self._first = self._peek_first_frame()
        self.rotation = _rotation(self.stream, self._first)
        coded_w, coded_h = self._first.width, self._first.height
        if self.rotation in (90, 270):
            coded_w, coded_h = coded_h, coded_w
        self.width, self.height = fit_size(coded_w, coded_h, max_size)
        self.info = VideoInfo(
            path=self.path, width=self.width, height=self.height, frames=self.stream.frames or 0,
            rate=self.stream.average_rate or self.stream.guessed_rate, time_base=self.stream.time_base,
            duration=self._duration(), rotation=self.rotation, codec=self.stream.codec_context.name,
            side_streams=tuple(_describe(s) for s in self.side_streams()),
        )

    def _duration(self) -> float | None:
        if self.stream.duration is not None:
            return float(self.stream.duration * self.stream.time_base)
        if self.container.duration is not None:
            return self.container.duration / av.time_base
        return None

    def side_streams(self) -> list[av.stream.Stream]:
        return [s for s in self.container.streams if s.type in SIDE_STREAM_TYPES]

    def _decoded(self) -> Iterator[av.VideoFrame]:
        for packet in self.container.demux(self.stream):
            try:
                yield from packet.decode()
            except av.error.InvalidDataError:
                self.damaged += 1

    def _peek_first_frame(self) -> av.VideoFrame:
        self._frames = self._decoded()
        try:
            return next(self._frames)
        except StopIteration:
            self.container.close()
            raise InputError(f"{self.path}: the video stream has no decodable frames") from None
        except av.error.FFmpegError as err:
            self.container.close()
            raise InputError(f"{self.path}: unsupported or damaged video ({_reason(err)})") from None

    def __iter__(self) -> Iterator[TimedFrame]:
        """Frames in presentation order. Frames without a timestamp get one from the frame rate, and the
        timestamps are made strictly increasing (encoders refuse anything else)."""
        rate = self.info.rate or Fraction(25)
        tb = self.stream.time_base or Fraction(1, 90000)
        step = max(1, round(1 / (rate * tb)))
        last_pts = None
        first, self._first = self._first, None
        frames = self._frames if first is None else _chain(first, self._frames)
        for frame in frames:
            pts = frame.pts if frame.pts is not None else (0 if last_pts is None else last_pts + step)
            if last_pts is not None and pts <= last_pts:
                pts = last_pts + 1
            last_pts = pts
            yield TimedFrame(self._to_rgb(frame), pts, tb, int(frame.duration or 0))

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        turned = self.rotation in (90, 270)
        width, height = (self.height, self.width) if turned else (self.width, self.height)
        scaling = (width, height) != (frame.width, frame.height)
        rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA" if scaling else None,
                             src_color_range=frame.color_range or None).to_ndarray()
        if self.rotation:
            rgb = np.rot90(rgb, k=self.rotation // 90)  # counter-clockwise, as the display matrix says
        return np.ascontiguousarray(rgb)

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _chain(first, rest):
    yield first
    yield from rest


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Open a video just long enough to describe it. Raises InputError for anything that is not a usable video."""
    with VideoReader(path) as reader:
        return reader.info


class SidePackets:
    """The audio and subtitle packets of a file, read through a second handle so that they can be interleaved
    with the video as it is written, instead of buffering the whole soundtrack."""

    def __init__(self, path: str | os.PathLike, streams: Sequence[av.stream.Stream]):
        self.container = av.open(str(path), mode="r")
        self.streams = [self.container.streams[s.index] for s in streams]
        self._packets = self.container.demux(*self.streams) if self.streams else iter(())
        self._next: av.Packet | None = None

    def until(self, seconds: float | None) -> Iterator[av.Packet]:
        """Packets whose timestamp is before `seconds` (all remaining ones for None), in file order."""
        while True:
            if self._next is None:
                self._next = next(self._packets, None)
                if self._next is None:
                    return
                if self._next.dts is None and self._next.pts is None:  # demuxer's end-of-stream flush packets
                    self._next = None
                    continue
            when = self._next.pts if self._next.pts is not None else self._next.dts
            if seconds is not None and when * self._next.time_base >= seconds:
                return
            packet, self._next = self._next, None
            yield packet

    def close(self) -> None:
        self.container.close()


def check_encoder(codec: str, container_suffix: str | None = None) -> str:
    """The FFmpeg encoder for `codec` (e.g. "h264" → "libx264"), or InputError with one line: not in this FFmpeg
    build, not a video codec, not storable in the output container, or not usable here (NVENC without an
    NVIDIA GPU)."""
    try:
        encoder = av.codec.Codec(codec, "w")
    except (av.error.FFmpegError, ValueError):  # PyAV raises UnknownCodecError (a ValueError) for unknown names
        raise InputError(f"video codec {codec!r} is not available in this FFmpeg build") from None
    if encoder.type != "video":
        raise InputError(f"{codec!r} is not a video codec")
    if container_suffix:
        try:
            probe = av.open(os.devnull, mode="w", format=_format_for(container_suffix))
        except (av.error.FFmpegError, ValueError):
            raise InputError(f"cannot write {container_suffix} videos; use .mp4, .mov or .mkv") from None
        try:
            storable = encoder.name in probe.supported_codecs
        finally:
            probe.close()
        if not storable:
            raise InputError(f"video codec {codec!r} cannot be stored in a {container_suffix} file")
    if encoder.name.endswith(("_nvenc", "_qsv", "_vaapi", "_amf", "_videotoolbox")):
        context = av.codec.CodecContext.create(encoder.name, "w")
        context.width, context.height, context.pix_fmt = 256, 256, PIXEL_FORMAT
        context.time_base = Fraction(1, 25)
        try:
            context.open()
        except av.error.FFmpegError as err:
            need = " (needs an NVIDIA GPU with NVENC and its driver)" if "_nvenc" in encoder.name else ""
            raise InputError(f"video codec {codec!r} cannot be used on this machine{need}: {_reason(err)}") from None
    return encoder.name


# FFmpeg muxer names for extensions that are not muxer names themselves (mp4, mov, webm, avi, flv are).
_MUXERS = {".mkv": "matroska", ".m4v": "mp4", ".ts": "mpegts", ".m2ts": "mpegts", ".mts": "mpegts",
           ".mpg": "mpeg", ".mpeg": "mpeg", ".ogv": "ogg", ".wmv": "asf"}


def _format_for(suffix: str) -> str:
    return _MUXERS.get(suffix.lower(), suffix.lower().lstrip("."))


def _quality_options(encoder: str, crf: int) -> dict[str, str]:
    """Constant-quality settings in the encoder's own terms: `crf` where it has one (x264, x265, VP9, SVT-AV1),
    `cq` for NVENC; others keep their defaults."""
    private = {option.name for option in av.codec.CodecContext.create(encoder, "w").supported_options.private}
    if "crf" in private:
        return {"crf": str(crf)}
    if "cq" in private:
        return {"cq": str(crf)}
    return {}


@dataclass
class WriterNotes:
    """What a writer had to change, for the caller to report honestly."""

    dropped_streams: list[str] = field(default_factory=list)
    padded_to: tuple[int, int] | None = None
    pixel_format: str = PIXEL_FORMAT


class VideoWriter:
    """Encodes upright RGB frames at given timestamps into a new file, optionally carrying over another file's
    rotation, colour tags and audio/subtitle streams (`like`, a VideoReader).

    `codec`: an FFmpeg encoder name (libx264, h264_nvenc, ...); `crf`: constant quality, lower is better
    (libx264's scale; NVENC gets it as `cq`). Call `close()` to finish the file; it is playable afterwards even
    if fewer frames than the source's were written.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, *, rate: Fraction | None,
                 time_base: Fraction, codec: str = "libx264", crf: int = 18, like: VideoReader | None = None):
        self.path = Path(path)
        codec = check_encoder(codec)
        self.notes = WriterNotes()
        self.rotation = like.rotation if like is not None else 0
        self.width, self.height = width, height  # upright, as frames are given
        coded_w, coded_h = (height, width) if self.rotation in (90, 270) else (width, height)
        self.pixel_format, self.pad = self._pixel_layout(codec, coded_w, coded_h)
        try:
            self.container = av.open(str(self.path), mode="w")
        except av.error.FFmpegError as err:
            raise InputError(f"{self.path}: cannot write a video here ({_reason(err)})") from None
        try:
            self.stream = self._add_video_stream(codec, crf, coded_w + self.pad[0], coded_h + self.pad[1],
                                                 rate, time_base, like)
            self.side_map = self._add_side_streams(like.side_streams() if like is not None else [])
        except BaseException:
            self.container.close()
            raise
        self.frames = 0

    def _pixel_layout(self, codec: str, width: int, height: int) -> tuple[str, tuple[int, int]]:
        if width % 2 == 0 and height % 2 == 0:
            return PIXEL_FORMAT, (0, 0)
        formats = {f.name for f in (av.codec.Codec(codec, "w").video_formats or ())}
        if ODD_SIZE_PIXEL_FORMAT in formats:
            self.notes.pixel_format = ODD_SIZE_PIXEL_FORMAT
            return ODD_SIZE_PIXEL_FORMAT, (0, 0)
        pad = (width % 2, height % 2)
        self.notes.padded_to = (width + pad[0], height + pad[1])
        return PIXEL_FORMAT, pad

    def _add_video_stream(self, codec, crf, width, height, rate, time_base, like):
        stream = self.container.add_stream(codec, rate=rate or Fraction(25), options=_quality_options(codec, crf))
        stream.width, stream.height, stream.pix_fmt = width, height, self.pixel_format
        stream.time_base = time_base  # source timestamps are kept as they are: variable frame rates stay so
        stream.codec_context.time_base = time_base
        if rate:
            stream.codec_context.framerate = rate
        if like is not None:
            src = like.stream.codec_context
            for tag in ("colorspace", "color_primaries", "color_trc"):  # frames are converted with these too
                if getattr(src, tag, 0):
                    setattr(stream.codec_context, tag, getattr(src, tag))
            if like.stream.sample_aspect_ratio:  # anamorphic pixels stay anamorphic (scaling keeps their shape)
                stream.codec_context.sample_aspect_ratio = like.stream.sample_aspect_ratio
            if self.rotation:
                stream.set_display_rotation(self.rotation)
            if like.stream.language:
                stream.metadata["language"] = like.stream.language
        return stream

    def _add_side_streams(self, streams: Sequence[av.stream.Stream]) -> dict[int, av.stream.Stream]:
        supported = self.container.supported_codecs
        mapping = {}
        for stream in streams:
            name = stream.codec_context.name if stream.codec_context else None
            if name not in supported:
                self.notes.dropped_streams.append(f"{_describe(stream)} (not storable in {self.path.suffix})")
                continue
            mapping[stream.index] = self.container.add_stream_from_template(stream)
        return mapping

    def _to_video_frame(self, rgb: np.ndarray) -> av.VideoFrame:
        if self.rotation:
            rgb = np.rot90(rgb, k=-(self.rotation // 90))  # back to the coded orientation
        if any(self.pad):
            rgb = np.pad(rgb, ((0, self.pad[1]), (0, self.pad[0]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        colorspace = self.stream.codec_context.colorspace or None
        return frame.reformat(format=self.pixel_format, dst_colorspace=colorspace, dst_color_range="MPEG")

    def write(self, rgb: np.ndarray, pts: int, time_base: Fraction, duration: int = 0) -> None:
        """Encode one upright RGB frame shown at `pts` (in `time_base` units)."""
        if rgb.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame is {rgb.shape[1]}x{rgb.shape[0]}, the video {self.width}x{self.height}")
        frame = self._to_video_frame(rgb)
        frame.pts, frame.time_base = pts, time_base
        if duration:
            frame.duration = duration
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def mux_side(self, packet: av.Packet) -> None:
        """Copy one audio/subtitle packet of the `like` file into the matching output stream."""
        out = self.side_map.get(packet.stream.index)
        if out is not None:
            packet.stream = out
            self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        try:
            if self.frames:
                for packet in self.stream.encode(None):
                    self.container.mux(packet)
        finally:
            self.container.close()
