"""`gankit bench toy2d`: the 2D mixture benchmark over several seeds, beside published numbers.

Protocol (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018; GDPP, Elfeki et al. 2019): 2,500
samples; a sample is high quality within 3 standard deviations of its nearest mode; a mode is captured
when it is nearest to at least one high-quality sample; reverse KL of the mode histogram to uniform.
Ring: 8 modes on a circle of radius 2, std 0.02. Grid: 25 modes at {-4,-2,0,2,4}^2, std 0.05.
"""
from __future__ import annotations

import time
from typing import Dict, List, Optional

import numpy as np

PUBLISHED = {  # (method, modes, high-quality %) as the papers' tables report them
    "ring8": [("GDPP (Elfeki et al. 2019, Table 1)", 8.0, 71.7)],
    "grid25": [("GDPP (Elfeki et al. 2019, Table 1)", 24.8, 68.5), ("PacGAN4 (Lin et al. 2018)", 24.8, None),
               ("VEEGAN (Srivastava et al. 2017, Table 1)", 24.6, 40.0)],
}


def toy2d(seeds: int = 5, recipes: Optional[List[str]] = None, out: str = "runs-bench",
          overrides: Optional[List[str]] = None) -> Dict[str, List[dict]]:
    import gankit
    from gankit.config import load_config
    from gankit.data import build_dataset
    from gankit.evaluate import evaluate
    results: Dict[str, List[dict]] = {}
    for name in recipes or ["ring8", "grid25"]:
        for seed in range(seeds):
            cfg = load_config(name, overrides=[f"train.seed={seed}", f"out={out}", *(overrides or [])])
            t = time.perf_counter()
            G = gankit.load(gankit.train(cfg, quiet=True))
            r = evaluate(G, build_dataset(cfg.data), seed=1000 + seed)
            r["seconds"] = time.perf_counter() - t
            results.setdefault(name, []).append(r)
            print(f"{name} seed {seed}: {r['modes']} modes, {100 * r['hq']:.1f}% HQ, "
                  f"reverse KL {r['kl']:.4f}, {r['seconds']:.0f} s", flush=True)
    return results


def _ms(values: List[float]) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.2f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.2f}"


def report(results: Dict[str, List[dict]]) -> str:
    lines = ["| data | method | modes | high quality % | reverse KL | s / run |", "|---|---|---|---|---|---|"]
    for name, rows in results.items():
        lines.append(f"| {name} | gankit `{name}` ({len(rows)} seeds) | {_ms([r['modes'] for r in rows])} | "
                     f"{_ms([100 * r['hq'] for r in rows])} | {_ms([r['kl'] for r in rows])} | "
                     f"{np.mean([r['seconds'] for r in rows]):.0f} |")
        for method, modes, hq in PUBLISHED.get(name, []):
            lines.append(f"| {name} | {method} | {modes} | {hq if hq is not None else 'n/a'} | n/a | |")
    return "\n".join(lines)
