"""Publishing videos browser-playable (files/media.py): a cache of H.264 MP4 copies, made once,
a bounded number at a time, kept within a size; uploads converted in place."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support.videos import frame_times, video_codec, write_video

from spoton_inference.files.browser_video import Verdict, moov_before_mdat, playability
from spoton_inference.files.media import MediaRoot, PlayableVideos


@pytest.fixture
def videos(tmp_path) -> PlayableVideos:
    return PlayableVideos(tmp_path / "cache", max_bytes=10**9, workers=1)


@pytest.fixture
def mjpeg(tmp_path) -> Path:
    """An MJPEG sub-video, named as environments name them."""
    return write_video(tmp_path / "env" / "sub_video_01.mp4", "mjpeg", frames=15, container="avi")


async def test_a_faststart_h264_mp4_is_served_as_it_is(videos, tmp_path):
    src = write_video(tmp_path / "ok.mp4", "libx264", container="mp4", options={"movflags": "+faststart"})
    assert await videos.playable(src) == src
    assert not videos.directory.exists() or not any(videos.directory.iterdir())


async def test_mjpeg_gets_an_h264_copy_once(videos, mjpeg):
    copy = await videos.playable(mjpeg)
    assert copy.parent == videos.directory and copy.suffix == ".mp4"
    assert video_codec(copy)[:2] == ("h264", "yuv420p") and moov_before_mdat(copy)
    assert frame_times(copy) == frame_times(mjpeg)
    made = copy.stat().st_ino
    assert await videos.playable(mjpeg) == copy and copy.stat().st_ino == made  # not made again
    assert [p.name for p in videos.directory.iterdir()] == [copy.name]  # no .part left


async def test_asking_twice_while_converting_joins_the_one_conversion(videos, mjpeg):
    first = videos.prefetch(mjpeg)
    assert videos.prefetch(mjpeg) is first or first.done()
    both = await asyncio.gather(videos.playable(mjpeg), videos.playable(mjpeg))
    assert both[0] == both[1] == first.result()


async def test_a_changed_video_gets_a_new_copy(videos, mjpeg, tmp_path):
    old = await videos.playable(mjpeg)
    write_video(mjpeg, "mjpeg", frames=9, container="avi")
    new = await videos.playable(mjpeg)
    assert new != old and len(frame_times(new)) == 9


async def test_least_recently_used_copies_go_past_the_size_limit(tmp_path):
    a = write_video(tmp_path / "a.avi", "mjpeg", container="avi")
    b = write_video(tmp_path / "b.avi", "mjpeg", container="avi")
    videos = PlayableVideos(tmp_path / "cache", max_bytes=1, workers=1)
    copy_a = await videos.playable(a)
    copy_b = await videos.playable(b)
    # Each copy is over the limit alone: the newest is kept, the older one removed.
    assert not copy_a.exists() and copy_b.exists()
    again = await videos.playable(a)  # made again on demand
    assert again.exists() and not copy_b.exists()


async def test_publish_video_hard_links_the_playable_copy(videos, mjpeg, tmp_path):
    media = MediaRoot(tmp_path / "media", "/api/v1/media", videos)
    rel = Path("tasks", "t1", "environments", "e1", "cameras", "c1", "sub_videos", mjpeg.name)
    assert await media.publish_video(mjpeg, rel) == f"/api/v1/media/{rel.as_posix()}"
    published = media.root / rel
    assert playability(published) is Verdict.PLAYABLE
    assert published.stat().st_ino == (await videos.playable(mjpeg)).stat().st_ino
    assert playability(mjpeg) is Verdict.TRANSCODE  # the environment's own file is left alone


async def test_publish_video_publishes_as_it_is_without_a_cache_or_when_conversion_fails(videos, tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video " * 100)
    with_cache = MediaRoot(tmp_path / "media", "/m", videos)
    await with_cache.publish_video(junk, Path("a.mp4"))
    assert (with_cache.root / "a.mp4").read_bytes() == junk.read_bytes()
    plain = MediaRoot(tmp_path / "media", "/m")
    await plain.publish_video(junk, Path("b.mp4"))
    assert (plain.root / "b.mp4").read_bytes() == junk.read_bytes()


async def test_an_upload_is_converted_in_place(videos, mjpeg):
    before = frame_times(mjpeg)
    made = await videos.convert_in_place(mjpeg)
    assert made is not None and made.verdict is Verdict.TRANSCODE and made.frames == 15
    assert playability(mjpeg) is Verdict.PLAYABLE and frame_times(mjpeg) == before
    assert await videos.convert_in_place(mjpeg) is None  # already playable: a restarted job skips it
    assert sorted(p.name for p in mjpeg.parent.iterdir()) == ["sub_video_01.mp4"]


async def test_cancelling_an_in_place_conversion_keeps_the_original(videos, tmp_path):
    src = write_video(tmp_path / "long.avi", "mjpeg", frames=400, size=(320, 240), container="avi")
    original = src.read_bytes()
    part = tmp_path / "long.avi.part"
    converting = asyncio.create_task(videos.convert_in_place(src))
    while not part.exists():  # cancelled once it is under way
        assert not converting.done()
        await asyncio.sleep(0.005)
    converting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await converting
    for _ in range(100):  # the thread stops at its next frame and removes its partial file
        if not part.exists():
            break
        await asyncio.sleep(0.05)
    assert src.read_bytes() == original and not part.exists()


def test_at_least_one_conversion_thread_is_required(tmp_path):
    with pytest.raises(ValueError, match="SPOTON_MEDIA_CONVERT_WORKERS"):
        PlayableVideos(tmp_path, max_bytes=1, workers=0)


def test_settings_share_one_cache_per_data_directory(tmp_path):
    from spoton_inference.settings import Settings

    settings = Settings(data_dir=tmp_path)
    assert settings.media.videos is settings.media.videos
    assert settings.media.videos.directory == tmp_path / "media-cache"
