import torch
from torch import nn

from fewcolor.meta import adapt_cache


def _net(value: float) -> nn.Module:
    net = nn.Linear(3, 2)
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(value)
    return net


def test_store_then_load_gives_the_stored_state(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FEWCOLOR_HOME", str(tmp_path / "home"))
    model = _net(0.5)
    key = adapt_cache.adaptation_key(model, cluster=3, steps=4)
    assert key != adapt_cache.adaptation_key(model, cluster=4, steps=4)
    assert key != adapt_cache.adaptation_key(_net(0.6), cluster=3, steps=4)
    assert not adapt_cache.load_cached(key, _net(0.0))  # nothing stored yet
    assert adapt_cache.store(key, _net(2.0), {"cluster": 3}) == adapt_cache.cache_path(key)
    into = _net(0.0)
    assert adapt_cache.load_cached(key, into)
    assert torch.equal(into.weight, torch.full((2, 3), 2.0))
    assert not adapt_cache.load_cached(key, nn.Linear(4, 2))  # another shape: ignored, not raised


def test_an_unwritable_home_costs_only_the_reuse(tmp_path, monkeypatch, caplog) -> None:
    # "adapted" is a file, so no entry can be written under it (a read-only home, even for root).
    home = tmp_path / "home"
    home.mkdir()
    (home / "adapted").write_text("not a folder")
    monkeypatch.setenv("FEWCOLOR_HOME", str(home))
    key = adapt_cache.adaptation_key(_net(0.5), cluster=0)
    assert adapt_cache.store(key, _net(1.0), {}) is None
    assert "FEWCOLOR_HOME" in caplog.text
    assert not adapt_cache.load_cached(key, _net(0.0))
