"""What evaluation costs: `gankit eval` on 10,000 samples phase by phase, and metrics during training
(`train.eval_every`) against the training time between two evaluations.

    python benchmarks/eval_cost.py [--n 10000] [--eval-every 500] [--eval-n 2000] [--write MD]

A short run of the default recipe (--eval-every steps, timed: the training time between two evaluations)
gives the G. Then, each phase timed on its own, best of --repeats: the cached feature classifier loaded,
the real images' features (cached, and computed afresh), --n samples drawn, their features, and each
metric. The whole `evaluate_run` (what `gankit eval RUN` calls) is timed last, and the evaluation the
trainer runs every --eval-every steps (--eval-n samples: FID and classes) is put beside the training time.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch


def best_of(fn, repeats: int) -> tuple:
    """(the fastest of `repeats` calls in s, the last result): a shared machine only ever slows a call down."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--eval-n", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--write", metavar="MD", help="also write the table with its command and hardware to MD")
    a = ap.parse_args()
    import gankit
    from gankit.config import load_config
    from gankit.evaluate import METRICS, evaluate, evaluate_run, get_extractor, real_features, run_dataset
    from gankit.metrics.scores import all_image_metrics
    from gankit.sample import sample
    from gankit.hardware import describe
    print(f"hardware: {describe(torch.device('cpu'))}")
    out = tempfile.mkdtemp(prefix="evalcost-")
    cfg = load_config("dcgan", overrides=[f"out={out}", f"train.steps={a.eval_every}",
                                          f"train.sample_every={a.eval_every}", f"train.ckpt_every={a.eval_every}"])
    t = time.perf_counter()
    run = gankit.train(cfg, quiet=True)
    train_s = time.perf_counter() - t
    G = gankit.load(run)
    ds = run_dataset(run)
    get_extractor("classifier", ds)  # the classifier is trained once per data set and cached: not timed here
    rows = [("training, between two evaluations", f"{a.eval_every} steps", train_s)]
    s, ext = best_of(lambda: get_extractor("classifier", ds), a.repeats)
    rows.append(("load the cached feature classifier", "", s))
    s, _ = best_of(lambda: real_features(ext, ds), a.repeats)
    rows.append(("real features, from the cache", f"{len(ds)} images", s))
    s, (real_f, _) = best_of(lambda: ext(ds.x), a.repeats)
    rows.append(("real features, computed", f"{len(ds)} images", s))
    s, x = best_of(lambda: sample(G, a.n, 123), a.repeats)
    rows.append(("sample", f"{a.n}", s))
    s, (fake_f, fake_logits) = best_of(lambda: ext(x), a.repeats)
    rows.append(("features of the samples", f"{a.n}", s))
    for names in (("fid",), ("kid",), ("is",), ("pr", "dc"), ("classes",)):
        s, _ = best_of(lambda: all_image_metrics(real_f, fake_f, fake_logits, ds.c, ds.num_classes, names), a.repeats)
        rows.append((f"metric {' + '.join(names)}", "", s))
    s, _ = best_of(lambda: evaluate_run(run, a.n, METRICS), 1)
    rows.append(("whole `gankit eval` (evaluate_run, every metric)", f"{a.n}", s))
    s, _ = best_of(lambda: evaluate(G, ds, a.eval_n, ("fid", "classes")), a.repeats)
    rows.append((f"one evaluation during training (train.eval_n={a.eval_n}: FID, classes)", f"{a.eval_n}", s))
    share = s / (s + train_s)
    table = ["| phase | samples | seconds |", "|---|---|---|", *[f"| {r} | {n} | {v:.2f} |" for r, n, v in rows]]
    text = "\n".join(table) + (f"\n\nWith `train.eval_every={a.eval_every}` and `train.eval_n={a.eval_n}` the "
                               f"evaluations take {share:.1%} of the training time.")
    print("\n" + text)
    if a.write:
        from gankit.bench import results_fragment, write_results
        write_results(a.write, results_fragment(text, precision=f"the default recipe's precision (train.amp={cfg.train.amp})",
                                                note=f"Best of {a.repeats} for each phase; the classifier of "
                                                     f"{ds.name} was trained and cached before the clock started."))


if __name__ == "__main__":
    main()
