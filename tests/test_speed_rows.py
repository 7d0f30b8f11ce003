from fewcolor.bench.speed import Row, part


def test_row_target_direction() -> None:
    assert Row("p", "rate", 250.0, "img/s", target=200.0).met is True
    assert Row("p", "rate", 150.0, "img/s", target=200.0).met is False
    assert Row("p", "latency", 4.0, "ms", target=5.0, higher_is_better=False).met is True
    assert Row("p", "latency", 6.0, "ms", target=5.0, higher_is_better=False).met is False
    assert Row("p", "peak", 1.0, "GFLOP/s").met is None


def test_missing_part_is_none() -> None:
    assert part("no_such_part") is None
