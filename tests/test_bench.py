from gankit.bench import report, toy2d


def test_toy2d_bench_runs_seeds_and_reports_beside_published(tmp_path):
    res = toy2d(seeds=2, recipes=["ring8"], out=str(tmp_path),
                overrides=["train.steps=20", "train.log_every=10", "train.sample_every=100", "train.ckpt_every=100"])
    assert len(res["ring8"]) == 2
    for r in res["ring8"]:
        assert 0 <= r["modes"] <= 8 and 0 <= r["hq"] <= 1
    table = report(res)
    assert "gankit `ring8` (2 seeds)" in table and "GDPP" in table
