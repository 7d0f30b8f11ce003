"""The LRU store of adapted generators."""

from fewcolor.meta.lru import LRU


def test_lru_keeps_the_most_recently_used() -> None:
    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # "a" is now the most recent
    lru.put("c", 3)
    assert lru.get("b") is None and lru.get("a") == 1 and lru.get("c") == 3 and len(lru) == 2
    lru.clear()
    assert len(lru) == 0 and lru.get("a") is None
    assert LRU(0).capacity == 1
