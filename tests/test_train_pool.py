"""Where the trainers keep their patch pools by default: the cache folder, not a machine's scratch disk."""
from celgraph.train.pool import default_pool


def test_default_pool_lives_under_the_cache_folder_unless_an_env_var_says_otherwise(monkeypatch, tmp_path):
    monkeypatch.delenv("CELGRAPH_GAPFILL_POOL", raising=False)
    monkeypatch.setenv("CELGRAPH_CACHE", str(tmp_path / "cache"))
    assert default_pool("gapfill") == str(tmp_path / "cache" / "train" / "gapfill" / "pool")
    monkeypatch.setenv("CELGRAPH_GAPFILL_POOL", str(tmp_path / "mine"))
    assert default_pool("gapfill") == str(tmp_path / "mine")
