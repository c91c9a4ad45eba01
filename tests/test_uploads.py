"""emotion_core.uploads on its own: the app's temporary directory, who holds which upload, and the sweep.
(tests/test_server_lifecycle.py checks the same promises against the running app.)"""
import os
import time

import pytest

from emotion_core import uploads
from emotion_core.uploads import TempDirInUse, Uploads


def upload(registry: Uploads, root, name="clip.wav", folder="abc123"):
    """What Gradio's upload route does, as UploadMiddleware reports it: a file at <root>/<hash>/<name>."""
    registry.upload_started()
    path = root / folder / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"RIFF recording")
    registry.upload_finished([str(path)])
    return path


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "gradio"
    r.mkdir()
    return r


def test_start_up_clears_what_a_crash_left_and_points_gradio_there(tmp_path, monkeypatch):
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    base = tmp_path / "app"
    gradio_dir, lock = uploads.own_temp_dir(base)
    (gradio_dir / "abc").mkdir()
    (gradio_dir / "abc" / "voice.wav").write_bytes(b"RIFF")
    (gradio_dir / "tmpxyz").write_bytes(b"half an upload")
    lock.close()  # what kill -9 does to the lock
    gradio_dir, lock = uploads.own_temp_dir(base)  # the restart
    assert os.environ["GRADIO_TEMP_DIR"] == str(gradio_dir)
    assert not [p for p in base.rglob("*") if p.is_file() and p.parent != base]
    lock.close()


def test_a_running_app_keeps_its_directory_and_a_foreign_directory_is_never_cleared(tmp_path, monkeypatch):
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    base = tmp_path / "app"
    gradio_dir, lock = uploads.own_temp_dir(base)
    (gradio_dir / "in-use.wav").write_bytes(b"RIFF")
    with pytest.raises(TempDirInUse, match="another running app"):
        uploads.own_temp_dir(base)
    assert (gradio_dir / "in-use.wav").exists()
    lock.close()
    foreign = tmp_path / "someone-elses"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("keep me")
    with pytest.raises(TempDirInUse, match="did not create"):
        uploads.own_temp_dir(foreign)
    assert (foreign / "thesis.txt").read_text() == "keep me"


def test_a_request_deletes_its_upload_and_nothing_else(root):
    registry = Uploads(root, sweep_s=60)
    mine = upload(registry, root)
    placed = root / "cached-example" / "a07.opus"  # an example's cached copy, or any file not uploaded
    placed.parent.mkdir()
    placed.write_bytes(b"OggS")
    assert registry.hold("request-1", mine)
    registry.release("request-1")
    assert not mine.exists()
    assert not registry.hold("request-2", placed)  # not an upload: never held, never deleted
    registry.release("request-2")
    registry.sweep(now=time.monotonic() + 3600)
    assert placed.exists()


def test_identical_uploads_share_a_file_that_outlives_every_request_but_the_last(root):
    registry = Uploads(root, sweep_s=60)
    paths = [upload(registry, root) for _ in range(3)]  # same content: Gradio gives one path
    assert len(set(paths)) == 1
    path = paths[0]
    registry.hold("a", path)
    registry.release("a")  # two identical uploads still wait for their requests
    assert path.exists()
    registry.hold("b", path)
    registry.hold("c", path)
    registry.release("b")
    assert path.exists()
    registry.release("c")
    assert not path.exists()


def test_a_session_keeps_its_clip_until_it_is_replaced_or_the_session_ends(root):
    registry = Uploads(root, sweep_s=60)
    first = upload(registry, root, "first.wav", "h1")
    registry.hold("session", first)
    registry.hold("session", first)  # Analyse pressed again on the same clip
    registry.sweep(now=time.monotonic() + 3600)  # however long the page stays open
    assert first.exists()
    second = upload(registry, root, "second.wav", "h2")
    registry.hold("session", second)  # a new clip replaces the old one
    assert not first.exists() and second.exists()
    registry.release("session")  # the page is closed
    assert not second.exists()


def test_no_deletion_while_an_upload_is_arriving(root):
    registry = Uploads(root, sweep_s=60)
    path = upload(registry, root)
    registry.hold("a", path)
    registry.upload_started()  # an identical upload being moved into the same folder
    registry.release("a")
    assert path.exists()
    assert registry.sweep(now=time.monotonic() + 3600) == 0
    registry.upload_finished([str(path)])
    registry.hold("b", path)
    registry.release("b")
    assert not path.exists()


def test_the_sweep_removes_unclaimed_uploads_and_leftovers_after_one_interval(root):
    registry = Uploads(root, sweep_s=60)
    refused = upload(registry, root, "refused.wav", "h1")  # queue full, or the client went away
    held = upload(registry, root, "held.wav", "h2")
    registry.hold("session", held)
    leftover = root / "tmpabc123"  # an upload cut off while Gradio moved it into place
    leftover.write_bytes(b"RIFF")
    old = time.time() - 120
    os.utime(leftover, (old, old))
    assert registry.sweep() == 1  # the leftover is old; the refused upload is not yet
    assert refused.exists() and not leftover.exists()
    registry.sweep(now=time.monotonic() + 61)
    assert not refused.exists() and held.exists()
    os.utime(refused.parent, (old, old))
    registry.sweep()
    assert not refused.parent.exists()  # its empty folder too


def test_parse_size():
    assert uploads.parse_size("25mb") == 25 * 2**20
    assert uploads.parse_size("1 GB") == 2**30
    assert uploads.parse_size("4096") == 4096


def test_a_clip_fetched_from_a_url_is_deleted_like_an_upload(root, monkeypatch):
    """Gradio fetches an input given as a URL into its cache itself, not through the upload route: the
    request that reads the fetched file deletes it; a failed fetch says why and leaves nothing held."""
    import asyncio

    import gradio as gr
    from gradio import processing_utils

    async def download(url, cache_dir):  # what Gradio's fetch does for a public address
        if "private" in url:
            raise ValueError("Hostname private.example failed validation")
        path = root / "hash-of-url" / "voice.wav"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"RIFF fetched recording")
        return str(path)

    monkeypatch.setattr(processing_utils, "async_ssrf_protected_download", download)
    registry = Uploads(root, sweep_s=60)
    component = gr.Audio(type="filepath")
    uploads.track_url_fetches(component, registry, refuse=lambda e: e)
    path = asyncio.run(component.async_move_resource_to_block_cache("https://public.example/voice.wav"))
    assert registry.hold("request-1", path), "the fetched file is not counted as an upload"
    registry.release("request-1")
    assert not root.joinpath("hash-of-url", "voice.wav").exists(), "the fetched recording outlived its request"
    with pytest.raises(ValueError, match="could not be fetched .*failed validation.* upload the file instead"):
        asyncio.run(component.async_move_resource_to_block_cache("https://private.example/voice.wav"))
    assert registry.sweep(now=time.monotonic() + 3600) == 0  # not left "in flight": the sweep still runs
