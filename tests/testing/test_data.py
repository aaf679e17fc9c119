import numpy as np
import pandas as pd
import pytest

from tfstream.testing import BAD_ROWS, make_frame, write_csv_shards


def test_make_frame_is_seeded_and_typed():
    a = make_frame(100, features=3, strings=2, seed=7)
    b = make_frame(100, features=3, strings=2, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["label", "f0", "f1", "f2", "s0", "s1"]
    assert a["label"].dtype == np.int64 and set(a["label"]) <= {0, 1}
    assert a["f0"].dtype == np.float32
    assert set(a["s0"]) <= {"red", "green", "blue", "yellow"}
    assert not make_frame(100, features=3, seed=8).equals(a.drop(columns=["s0", "s1"]))


def test_label_depends_on_features():
    frame = make_frame(5000, features=4, seed=0)
    assert 0.2 < frame["label"].mean() < 0.8
    # The label follows a linear rule of the features: they separate the classes.
    means = frame.groupby("label")[["f0", "f1", "f2", "f3"]].mean()
    assert (means.loc[1] - means.loc[0]).abs().max() > 0.1


def test_csv_shards_read_back_exactly(tmp_path):
    paths = write_csv_shards(tmp_path, 1001, shards=3, features=2, strings=1, seed=3)
    assert [p.rsplit("/", 1)[1] for p in paths] == [
        "part-00000.csv",
        "part-00001.csv",
        "part-00002.csv",
    ]
    frames = [pd.read_csv(p, dtype={"f0": np.float32, "f1": np.float32}) for p in paths]
    assert [len(f) for f in frames] == [334, 334, 333]
    for i, frame in enumerate(frames):  # shortest float text round-trips
        expected = make_frame(len(frame), features=2, strings=1, seed=[3, i], rule_seed=3)
        pd.testing.assert_frame_equal(frame, expected)
    # One label rule for the set: a logistic fit on shard 0 predicts shard 2 as well as itself.
    from sklearn.linear_model import LogisticRegression

    big = write_csv_shards(tmp_path / "big", 20_000, shards=2, features=4, seed=5)
    train, test = (pd.read_csv(p) for p in big)
    columns = ["f0", "f1", "f2", "f3"]
    fit = LogisticRegression().fit(train[columns], train["label"])
    accuracy = fit.score(test[columns], test["label"])
    assert accuracy > fit.score(train[columns], train["label"]) - 0.03


def test_bad_rows_go_to_the_middle_shard(tmp_path):
    paths = write_csv_shards(tmp_path, 400, shards=3, features=2, bad_rows=6)
    lines = [open(p).read().splitlines() for p in paths]
    assert [len(x) - 1 for x in lines] == [134, 133 + 6, 133]
    bad = [x for x in lines[1][1:] if x.count(",") != 2 or "not-a-number" in x or x[0] == ","]
    assert len(bad) == 6
    assert len(BAD_ROWS) == 4


@pytest.mark.parametrize("kwargs", [{"rows": -1}, {"shards": 0}, {"bad_rows": 1.5}])
def test_bad_counts_raise(tmp_path, kwargs):
    args = {"rows": 10, **kwargs}
    rows = args.pop("rows")
    with pytest.raises(ValueError, match="must be an integer"):
        write_csv_shards(tmp_path, rows, **args)
