"""What keeps a training run's folder whole: one process per folder, durable checkpoints with a fallback,
time-based saves, a stop during the set-up pass, and a resumed run's new length."""

import logging
import os
import signal

import pytest
import torch

from fewcolor.io.atomic import atomic_path
from fewcolor.io.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from fewcolor.methods.registry import build_method
from fewcolor.methods.unet import UNetRegression
from fewcolor.train import loop
from fewcolor.train.last_state import PREVIOUS_NAME, resumable_state
from fewcolor.train.loop import TrainingInterrupted, TrainOptions, train
from fewcolor.train.run_lock import LOCK_NAME, RunFolderBusy, run_folder_lock
from helpers import TensorColourDataset, smooth_colour_images


def _dataset():
    return TensorColourDataset(smooth_colour_images(6, 16))


def _unet():
    return build_method("unet", "tiny", {"image_size": 16, "depth": 3})


def _opts(out, **kw):
    base = dict(out_dir=out, steps=4, batch_size=2, seed=3, checkpoint_every=0, checkpoint_minutes=0,
                sample_every=0, progress=False, tensorboard=False)
    base.update(kw)
    return TrainOptions(**base)


# ---------------------------------------------------------------------------------------------- a used folder
def test_a_finished_model_is_never_replaced_even_without_its_checkpoints(tmp_path):
    train(_unet(), _dataset(), _opts(tmp_path))
    model = tmp_path / "model.safetensors"
    before = model.read_bytes()
    for f in (tmp_path / "checkpoints").iterdir():  # checkpoints deleted to save space
        f.unlink()
    with pytest.raises(FileExistsError, match=r"already holds the model\.safetensors of an earlier run"):
        train(_unet(), _dataset(), _opts(tmp_path, seed=4))
    assert model.read_bytes() == before


# ---------------------------------------------------------------------------------------------- the lock
def test_a_second_run_into_a_busy_folder_is_refused_naming_the_holder(tmp_path):
    with run_folder_lock(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())
        with pytest.raises(RunFolderBusy, match=rf"in use by another training run \(pid {os.getpid()}\)"):
            train(_unet(), _dataset(), _opts(tmp_path))
    assert not (tmp_path / "checkpoints").exists(), "the refused run wrote into the folder"
    train(_unet(), _dataset(), _opts(tmp_path))  # released: the folder is free again


def test_a_lock_file_left_by_a_dead_process_does_not_block(tmp_path):
    (tmp_path / LOCK_NAME).write_text("999999\n")  # what a kill -9 leaves: the file, not the lock
    with run_folder_lock(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())


def test_the_lock_is_held_for_the_whole_run_and_released_after_an_error(tmp_path):
    class Failing(UNetRegression):
        def training_step(self, batch, step):
            with pytest.raises(RunFolderBusy), run_folder_lock(tmp_path):
                pass  # another process would be refused while this run trains
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        train(Failing(UNetRegression.make_config("tiny", {"depth": 3})), _dataset(), _opts(tmp_path))
    with run_folder_lock(tmp_path):
        pass


# ------------------------------------------------------------------------------ durable, kept, fallback
def test_checkpoints_are_flushed_to_the_disk_before_and_after_the_rename(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd)))
    save_checkpoint(tmp_path / "m.safetensors", {"w": torch.ones(2)}, {"kind": "test"})
    assert len(synced) == 2 and synced[0].endswith(".tmp") and synced[1] == str(tmp_path)
    synced.clear()
    with atomic_path(tmp_path / "plain.txt") as tmp:
        tmp.write_text("x")
    assert synced == [], "plain atomic writes (logs, JSON) need no fsync"


def test_a_damaged_last_state_resumes_from_the_one_before_and_continues_exactly(tmp_path, caplog):
    ds = _dataset()
    torch.manual_seed(0)
    full = _unet()
    train(full, ds, _opts(tmp_path / "full", steps=6))
    torch.manual_seed(0)
    part = _unet()
    train(part, ds, _opts(tmp_path / "part", steps=3, checkpoint_every=1))
    ckpt = tmp_path / "part" / "checkpoints"
    assert read_metadata(ckpt / PREVIOUS_NAME)["step"] == 2
    last = ckpt / "last.safetensors"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # a save torn by a host crash
    resumed = _unet()
    with caplog.at_level(logging.WARNING, logger="fewcolor.train.last_state"):
        result = train(resumed, ds, _opts(tmp_path / "part", steps=6, resume=True))
    assert "resuming from the checkpoint before it" in caplog.text and "(step 2)" in caplog.text
    assert result.step == 6
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert load_checkpoint(ckpt / PREVIOUS_NAME)[1]["step"] == 2, "the torn file became the fallback"


def test_a_missing_last_state_falls_back_and_two_damaged_ones_are_named(tmp_path):
    train(_unet(), _dataset(), _opts(tmp_path, steps=2, checkpoint_every=1))
    last = tmp_path / "checkpoints" / "last.safetensors"
    last.unlink()  # a crash between moving it aside and writing the new one
    assert resumable_state(last).name == PREVIOUS_NAME
    (tmp_path / "checkpoints" / PREVIOUS_NAME).write_bytes(b"")
    last.write_bytes(b"")
    with pytest.raises(loop.CheckpointError, match="cannot be read either"):
        train(_unet(), _dataset(), _opts(tmp_path, steps=4, resume=True))


def test_the_state_is_also_saved_when_minutes_have_passed(tmp_path, monkeypatch):
    saved: list[int] = []
    real = loop.save_keeping_previous
    monkeypatch.setattr(loop, "save_keeping_previous", lambda path, m, o, step, extra: (saved.append(step),
                                                                                       real(path, m, o, step, extra)))
    train(_unet(), _dataset(), _opts(tmp_path / "off", steps=4))
    assert saved == [0, 4], "by steps only (checkpoint_every 0): the first rollback target and the end"
    saved.clear()
    train(_unet(), _dataset(), _opts(tmp_path / "timed", steps=4, checkpoint_minutes=1e-9))
    assert saved == [0, 1, 2, 3, 4]


def test_negative_checkpoint_minutes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="checkpoint_minutes"):
        train(_unet(), _dataset(), _opts(tmp_path, checkpoint_minutes=-1))


# ------------------------------------------------------------------------------------ stop during set-up
class _SlowSetup(UNetRegression):
    """A set-up pass that receives SIGINT early and would go on for a long time."""

    finished_setup = False

    def setup(self, train_data):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(200):
            torch.ones(1)  # the handler runs between bytecodes: the set-up must not get to its end
        self.finished_setup = True


def test_a_signal_during_the_set_up_pass_stops_at_once_with_nothing_to_save(tmp_path):
    m = _SlowSetup(UNetRegression.make_config("tiny", {"depth": 3}))
    with pytest.raises(TrainingInterrupted, match=r"before the first step.*nothing to save yet: run the same command"):
        train(m, _dataset(), _opts(tmp_path))
    assert not m.finished_setup
    assert not (tmp_path / "checkpoints" / "last.safetensors").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_signal_while_the_set_up_decodes_an_image_is_not_taken_for_a_bad_image(tmp_path, monkeypatch):
    from fewcolor.data.folder import ImageFolderDataset
    from fewcolor.io import image as image_mod

    data = tmp_path / "data"
    data.mkdir()
    for i, img in enumerate(smooth_colour_images(4, 16)):
        image_mod.write_rgb(data / f"{i}.png", img)
    real_decode = image_mod._decode_within

    def decode_and_get_a_signal(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # lands inside read_rgb's try, which turns an Exception into a bad image
        return real_decode(*args, **kwargs)

    class ReadsInSetUp(UNetRegression):
        def setup(self, train_data):
            train_data[0]

    dataset = ImageFolderDataset(data, scan_cache=False)
    monkeypatch.setattr(image_mod, "_decode_within", decode_and_get_a_signal)  # after the scan, which decodes too
    with pytest.raises(TrainingInterrupted, match="before the first step"):
        train(ReadsInSetUp(UNetRegression.make_config("tiny", {"depth": 3})), dataset, _opts(tmp_path / "run"))
    assert dataset.failed_reads == {}


def test_a_signal_after_the_first_save_stops_after_a_step_and_saves(tmp_path, monkeypatch):
    real_init = loop.TrainStep.__init__

    def init_then_signal(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # the state of step 0 is on the disk already

    monkeypatch.setattr(loop.TrainStep, "__init__", init_then_signal)
    with pytest.raises(TrainingInterrupted, match=r"at step 1; the state is saved in .*--resume"):
        train(_unet(), _dataset(), _opts(tmp_path, steps=4))
    assert read_metadata(tmp_path / "checkpoints" / "last.safetensors")["step"] == 1


def test_a_failure_of_the_data_saves_the_steps_done_before_it_ends_the_run(tmp_path):
    class FailingAtStep3(TensorColourDataset):
        calls = 0

        def __getitem__(self, index):
            FailingAtStep3.calls += 1
            if FailingAtStep3.calls == 7:  # the first sample of the fourth batch of 2, step 3
                raise OSError(5, "Input/output error")
            return super().__getitem__(index)

    with pytest.raises(OSError, match="Input/output error"):
        train(_unet(), FailingAtStep3(smooth_colour_images(6, 16)), _opts(tmp_path, steps=6))
    assert read_metadata(tmp_path / "checkpoints" / "last.safetensors")["step"] == 3


def test_a_file_system_without_flock_trains_unlocked_with_a_warning(tmp_path, monkeypatch, caplog):
    import errno

    from fewcolor.train import run_lock

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(run_lock.fcntl, "flock", no_flock)
    with caplog.at_level(logging.WARNING, logger="fewcolor.train.run_lock"):
        assert train(_unet(), _dataset(), _opts(tmp_path, steps=1)).step == 1
    assert "cannot lock files (No locks available)" in caplog.text


def test_a_signal_during_a_resumed_runs_set_up_points_to_its_state(tmp_path):
    train(_unet(), _dataset(), _opts(tmp_path, steps=2))
    m = _SlowSetup(UNetRegression.make_config("tiny", {"image_size": 16, "depth": 3}))
    with pytest.raises(TrainingInterrupted, match=r"at step 2; the state is saved in .*--resume") as info:
        train(m, _dataset(), _opts(tmp_path, steps=4, resume=True))
    assert info.value.checkpoint == tmp_path / "checkpoints" / "last.safetensors"


# ------------------------------------------------------------------------------------------- new length
def test_a_resumed_run_with_another_length_says_whether_its_schedule_moves(tmp_path, caplog):
    train(_unet(), _dataset(), _opts(tmp_path / "unet", steps=2))
    with caplog.at_level(logging.INFO, logger="fewcolor.train.loop"):
        train(_unet(), _dataset(), _opts(tmp_path / "unet", steps=4, resume=True))
    assert "planned for 2 steps and now goes to 4; its learning rates do not depend on the length" in caplog.text

    cic = {"lr": 3e-3, "prior_cache": False}
    train(build_method("cic", "tiny", cic), _dataset(), _opts(tmp_path / "cic", steps=3))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fewcolor.train.loop"):
        train(build_method("cic", "tiny", cic), _dataset(), _opts(tmp_path / "cic", steps=9, resume=True))
    # CIC's §3 drops at 4/9 and 5/6 of the run: both are behind step 3 of the 3-step plan, neither has come at
    # step 3 of the 9-step run, so the rates part at step 3
    assert "planned for 3 steps and now goes to 9" in caplog.text and "from step 3 on" in caplog.text


def test_a_schedule_moved_at_single_steps_is_seen_and_no_round_is_left_after_the_last_step(caplog):
    from fewcolor.train.loop import _rounds_left, _say_new_length

    cic = build_method("cic", "tiny", {"prior_cache": False})
    with caplog.at_level(logging.WARNING, logger="fewcolor.train.loop"):
        _say_new_length(cic, 1000, 1005, 0)  # the drops move by 2 and 4 steps: a sample of the steps misses them
    assert "from step 445 on" in caplog.text
    assert _rounds_left(50, 50, 100) == 0 and _rounds_left(2, 9, 2) == 4


def test_the_start_line_says_device_threads_precision_batch_and_steps(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="fewcolor.train.loop"):
        train(_unet(), _dataset(), _opts(tmp_path, steps=2))
    threads = torch.get_num_threads()
    assert f"training unet on cpu ({threads} thread{'s' if threads > 1 else ''}), fp32, batch 2, 2 steps" in caplog.text
