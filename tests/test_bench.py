from gankit.bench import report, run


def test_toy2d_bench_runs_seeds_and_reports_beside_published(tmp_path):
    res = run("toy2d", seeds=2, recipes=["ring8"], out=str(tmp_path), drs=True,
              overrides=["train.steps=20", "train.log_every=10", "train.sample_every=100", "train.ckpt_every=100"])
    assert list(res) == ["ring8", "ring8 +DRS"] and len(res["ring8"]) == len(res["ring8 +DRS"]) == 2
    for r in res["ring8"] + res["ring8 +DRS"]:
        assert 0 <= r["modes"] <= 8 and 0 <= r["hq"] <= 1
    assert all(0 < r["acceptance"] <= 1 for r in res["ring8 +DRS"])
    for plain, drs in zip(res["ring8"], res["ring8 +DRS"]):  # DRS rows add the rejection's time to the run's
        assert 0 < plain["cpu_seconds"] < drs["cpu_seconds"] and 0 < plain["seconds"] < drs["seconds"]
    table = report(res).splitlines()
    assert "gankit `ring8` (2 seeds)" in table[2] and "gankit `ring8` + DRS (2 seeds)" in table[3]
    assert "GDPP" in table[4]  # published numbers follow both gankit rows


def test_stacked_mnist_report_puts_kl_beside_published():
    rows = [{"modes": 990, "kl": 0.10, "seconds": 5.0, "cpu_seconds": 9.0},
            {"modes": 1000, "kl": 0.05, "seconds": 7.0, "cpu_seconds": 13.0}]
    table = report({"stacked-mnist": rows})
    assert ("| stacked-mnist | gankit `stacked-mnist` (2 seeds) | 995.00 ± 7.07 | n/a | 0.075 ± 0.035 | 6 | 11 |"
            in table)
    assert "PacDCGAN2" in table and "| 1000.0 | n/a | 0.06 | | |" in table


def test_report_names_the_refit_of_d_in_the_drs_row():
    row = [{"modes": 25, "hq": 0.9, "kl": 0.01, "seconds": 1.0, "cpu_seconds": 1.5}]
    table = report({"grid25": row, "grid25 +DRS, D refit 2000 steps": row}).splitlines()
    assert "gankit `grid25` + DRS, D refit 2000 steps (1 seeds)" in table[3] and "GDPP" in table[4]


def test_bench_command_takes_overrides_after_its_options(tmp_path, monkeypatch, capsys):
    """`gankit bench toy2d --seeds 1 --out DIR key=value`: the overrides reach every run."""
    import gankit.bench
    from gankit.cli import main
    seen = {}

    def fake_run(name, seeds, out, overrides, drs, drs_refit, drs_refit_batch, device):
        seen.update(name=name, seeds=seeds, out=out, overrides=overrides, drs=drs, drs_refit=drs_refit,
                    drs_refit_batch=drs_refit_batch, device=device)
        return {"ring8": [{"modes": 8, "hq": 0.9, "kl": 0.01, "seconds": 1.0, "cpu_seconds": 1.5}]}
    monkeypatch.setattr(gankit.bench, "run", fake_run)
    assert main(["bench", "toy2d", "--seeds", "1", "--out", str(tmp_path), "--device", "cpu", "train.steps=7",
                 "train.pack=2"]) == 0
    assert seen == {"name": "toy2d", "seeds": 1, "out": str(tmp_path), "overrides": ["train.steps=7", "train.pack=2"],
                    "drs": False, "drs_refit": 0, "drs_refit_batch": 1024, "device": "cpu"}
    assert "gankit `ring8`" in capsys.readouterr().out
