import pytest

from tfstream.testing import write_csv_shards


@pytest.fixture
def csv_dir(tmp_path):
    """3 CSV shards, 600 rows: a 0/1 label, 28 floats, 2 string columns."""
    directory = tmp_path / "data"
    write_csv_shards(directory, 600, shards=3, features=28, strings=2, seed=1)
    return directory
