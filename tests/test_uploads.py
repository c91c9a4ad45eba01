"""webapp.uploads on its own: the app's temporary directory, who holds which upload, and the sweep.
(tests/test_server_lifecycle.py checks the same promises against the running app.)"""

import os
import time

import pytest

from webapp import uploads
from webapp.uploads import TempDirInUse, Uploads


def upload(registry: Uploads, root, name="clip.wav", folder="abc123"):
    """What Gradio's upload route does, as upload_route.UploadRoute reports it: a file at <root>/<hash>/<name>."""
    token = registry.upload_started()
    path = root / folder / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"RIFF recording")
    registry.upload_finished(token, [str(path)])
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
    with registry.in_use(mine) as held:
        assert held and mine.exists()
    assert not mine.exists()
    with registry.in_use(placed) as held:  # not an upload: never held, never deleted
        assert not held
    registry.sweep(now=time.monotonic() + 3600)
    assert placed.exists()


def test_a_clip_goes_with_its_answer_unless_an_open_page_shows_it(root):
    """Issue 28 item 1: a call that names a session hash with no heartbeat (a script) does not keep its clip."""
    registry = Uploads(root, sweep_s=60)
    scripted = upload(registry, root, "a.wav", "h1")
    with registry.in_use(scripted, page="no-heartbeat"):
        assert scripted.exists()
    assert not scripted.exists(), "a clip outlived its answer without a page to show it"
    registry.page_opened("tab")
    shown = upload(registry, root, "b.wav", "h2")
    with registry.in_use(shown, page="tab"):
        pass
    registry.sweep(now=time.monotonic() + 3600)  # however long the page stays open
    assert shown.exists()
    registry.page_closed("tab")
    assert not shown.exists(), "the clip outlived its page"


def test_a_page_keeps_its_clip_until_it_is_replaced_cleared_or_closed(root):
    registry = Uploads(root, sweep_s=60)
    registry.page_opened("tab")
    registry.page_opened("tab")  # the heartbeat reconnected before the old stream ended
    first = upload(registry, root, "first.wav", "h1")
    with registry.in_use(first, page="tab"):
        pass
    with registry.in_use(first, page="tab"):  # Analyse pressed again on the same clip
        pass
    registry.page_closed("tab")
    assert first.exists()
    second = upload(registry, root, "second.wav", "h2")
    with registry.in_use(second, page="tab"):  # a new clip replaces the old one
        pass
    assert not first.exists() and second.exists()
    example = root / "example" / "a07.opus"  # an example clip: never held, never deleted
    example.parent.mkdir()
    example.write_bytes(b"OggS")
    with registry.in_use(example, page="tab"):  # the page shows an example now
        pass
    assert not second.exists() and example.exists()
    with registry.in_use(second := upload(registry, root, "second.wav", "h2"), page="tab"):
        pass
    registry.release_page("tab")  # the player's Clear
    assert not second.exists()
    third = upload(registry, root, "third.wav", "h3")
    with registry.in_use(third, page="tab"):
        pass
    registry.page_closed("tab")  # the page is closed
    assert not third.exists()


def test_every_hold_expires(root):
    """A request that never ends (a stuck worker) does not keep its clip past REQUEST_S."""
    registry = Uploads(root, sweep_s=60, request_s=600)
    stuck = upload(registry, root)
    request = registry.in_use(stuck)
    request.__enter__()  # entered, never left
    registry.sweep(now=time.monotonic() + 300)
    assert stuck.exists()
    registry.sweep(now=time.monotonic() + 601)
    assert not stuck.exists()


def test_an_upload_in_flight_holds_up_nothing_but_its_own_temporary_file(root):
    """Issue 28 item 2: one slow upload stopped every deletion and the sweep, for every user."""
    registry = Uploads(root, sweep_s=60)
    orphan = root / "tmporphan"  # cut off before the slow upload began
    orphan.write_bytes(b"RIFF half")
    old = time.time() - 120
    os.utime(orphan, (old, old))
    slow = registry.upload_started()  # still arriving
    arriving = root / "tmparriving"
    arriving.write_bytes(b"RIFF")
    used = upload(registry, root, "used.wav", "h1")
    with registry.in_use(used):
        pass
    assert not used.exists(), "a request's clip outlived its answer while another upload was in flight"
    unused = upload(registry, root, "unused.wav", "h2")
    registry.sweep(now=time.monotonic() + 61)
    assert not unused.exists() and not orphan.exists(), "the sweep stopped while another upload was in flight"
    assert arriving.exists(), "the sweep deleted an upload while it arrived"
    registry.upload_finished(slow, [])
    registry.sweep(now=time.monotonic() + 61)
    assert not arriving.exists()


def test_the_sweep_leaves_an_upload_a_queued_request_names(root):
    """Ten uploads at once on two workers: a clip waiting in the queue for longer than the sweep interval."""
    waiting = []
    registry = Uploads(root, sweep_s=60, queued=lambda: set(waiting))
    queued = upload(registry, root, "queued.wav", "h1")
    waiting.append(queued)
    registry.sweep(now=time.monotonic() + 61)
    assert queued.exists()
    waiting.clear()
    registry.sweep(now=time.monotonic() + 61)
    assert not queued.exists()


def test_the_sweep_removes_unclaimed_uploads_and_leftovers_after_one_interval(root):
    registry = Uploads(root, sweep_s=60)
    refused = upload(registry, root, "refused.wav", "h1")  # queue full, or the client went away
    held = upload(registry, root, "held.wav", "h2")
    registry.page_opened("tab")
    with registry.in_use(held, page="tab"):
        pass
    leftover = root / "tmpabc123"  # an upload cut off while Gradio moved it into place
    leftover.write_bytes(b"RIFF")
    old = time.time() - 120
    os.utime(leftover, (old, old))
    assert registry.sweep() == 1  # the leftover is old; the refused upload is not yet
    assert refused.exists() and not leftover.exists()
    registry.sweep(now=time.monotonic() + 61)
    assert not refused.exists() and held.exists()
    assert not refused.parent.exists()  # its empty folder too


def test_parse_size():
    assert uploads.parse_size("25mb") == 25 * 2**20
    assert uploads.parse_size("1 GB") == 2**30
    assert uploads.parse_size("4096") == 4096
