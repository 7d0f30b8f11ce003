"""`fewcolor bench --data FOLDER`: episodes from a user's subfolders, the training set, an end-to-end run."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch
from click.testing import CliRunner

from fewcolor.bench.protocols import folder_protocols, protocol_episodes, protocol_train_paths
from fewcolor.cli import main
from fewcolor.data.user_folder import folder_episodes
from fewcolor.io.image import write_rgb


def _colour(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.interpolate(torch.rand(1, 3, 3, 3, generator=g), size=(20, 20), mode="bilinear")[0]


@pytest.fixture()
def user_folder(tmp_path):
    root = tmp_path / "mine"
    for i, name in enumerate(["c.png", "a.png", "b.png", "d/e.png"]):  # d/e.png: deeper, still class "alice"
        write_rgb(root / "alice" / name, _colour(i))
    for i, name in enumerate(["z.png", "y.png"]):
        write_rgb(root / "bob" / name, _colour(10 + i))
    write_rgb(root / "carol" / "only.png", _colour(20))
    write_rgb(root / "loose.png", _colour(30))  # not in a class folder: ignored
    (root / "bob" / "broken.png").write_bytes(b"not an image")  # reported and skipped
    return root


def test_folder_episodes_take_the_first_k_by_name_and_skip_classes_without_queries(user_folder, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        eps = folder_episodes(user_folder, 1)
    assert [e.label for e in eps] == ["alice", "bob"]
    alice, bob = eps
    assert [p.relative_to(user_folder).as_posix() for p in alice.support] == ["alice/a.png"]
    assert [p.relative_to(user_folder).as_posix() for p in alice.queries] == ["alice/b.png", "alice/c.png",
                                                                              "alice/d/e.png"]
    assert alice.truth == alice.queries and alice.name == "mine/alice/k1"
    assert [p.name for p in bob.support] == ["y.png"] and [p.name for p in bob.queries] == ["z.png"]
    assert "carol has 1 images" in caplog.text and "broken.png" in caplog.text
    eps3 = folder_episodes(user_folder, 3)
    assert [e.label for e in eps3] == ["alice"] and [p.name for p in eps3[0].queries] == ["e.png"]
    with pytest.raises(ValueError, match="no class has more than 4 images"):
        folder_episodes(user_folder, 4)


def test_folder_protocols_train_on_the_supports_and_key_runs_by_content(user_folder, tmp_path) -> None:
    p1, p2 = folder_protocols(user_folder, [1, 2])
    assert (p1.name, p1.k_shot, p2.k_shot) == ("folder-mine-k1", 1, 2)
    assert p1.dataset != p2.dataset and p1.dataset.endswith("-k1")
    assert [p.name for p in protocol_train_paths(p1, None, False)] == ["a.png", "y.png"]
    assert [e.label for e in protocol_episodes(p2, None, 0, False)] == ["alice"]
    other = tmp_path / "train"
    write_rgb(other / "x.png", _colour(40))
    (p_train,) = folder_protocols(user_folder, [1], train_folder=other)
    assert [p.name for p in protocol_train_paths(p_train, None, False)] == ["x.png"]
    write_rgb(user_folder / "alice" / "f.png", _colour(50))  # new content: new training runs
    assert folder_protocols(user_folder, [1])[0].dataset != p1.dataset


@pytest.mark.weights
def test_bench_on_a_folder_runs_the_baselines_end_to_end(emoji_dir, tmp_path, lpips_weights) -> None:

    data = tmp_path / "emoji3"
    for cls in ("heart", "plant-flower"):
        shutil.copytree(emoji_dir / cls, data / cls)
    r = CliRunner().invoke(main, ["bench", "--data", str(data), "--shots", "1,3", "--methods", "grey,lut",
                                  "--size", "smoke", "--no-fid", "-o", str(tmp_path / "results")])
    assert r.exit_code == 0, r.output
    (tmp_path / "results" / "RESULTS.md").rename(tmp_path / "RESULTS.md")  # the default: inside -o, not ./docs
    for k, queries in ((1, 2 * 2), (3, 2 * 2)):  # smoke: 2 episodes × at most 2 queries
        summary = json.loads((tmp_path / "results" / f"folder-emoji3-k{k}" / "lut.json").read_text())
        assert summary["queries"] == queries and summary["adaptation"] == ["own"]
        assert (tmp_path / "results" / f"folder-emoji3-k{k}" / "gallery.png").is_file()
    md = (tmp_path / "RESULTS.md").read_text()
    assert "### folder-emoji3-k1" in md and "| grey |" in md and "| lut |" in md
    assert CliRunner().invoke(main, ["bench", "--methods", "grey"]).exit_code != 0  # neither PROTOCOL nor --data


def test_the_evaluation_bar_knows_how_many_queries_the_budget_scores(user_folder) -> None:
    """The bench's evaluation bar gets a total (so it shows an ETA): the queries of the budget's episodes."""
    from dataclasses import replace

    from fewcolor.bench.protocols import SIZES
    from fewcolor.bench.runner import _budget_episodes, _query_count

    (protocol,) = folder_protocols(user_folder, [1])
    every = SIZES["paper"]  # every episode and every query
    episodes = _budget_episodes(protocol, every, None, 0, smoke=False)
    assert [len(ep.queries) for ep in episodes] == [3, 1]  # alice: 4 images, bob: 2 (broken.png skipped)
    assert _query_count(episodes, every) == 4
    capped = replace(every, max_queries=2, max_episodes=1)
    one = _budget_episodes(protocol, capped, None, 0, smoke=False)
    assert len(one) == 1 and _query_count(one, capped) == min(2, len(one[0].queries))
