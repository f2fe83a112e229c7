"""Assemble docs/results.md from the fragments the benchmarks write (docs/results/*.md), and copy the
headline fragments into the README between its `<!-- results:NAME -->` and `<!-- /results:NAME -->`
markers. Neither page's tables are edited by hand: rerun a fragment's command, then this script.

    python benchmarks/results.py           # rewrite docs/results.md and the README's result tables
    python benchmarks/results.py --check   # exit 1 if either page is out of date with the fragments

Each fragment starts with the command that regenerates it and the hardware it ran on (gankit.bench.results_fragment).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAGMENTS = ROOT / "docs" / "results"
# (fragment, section title) in page order; a fragment not listed here is an error, so none is forgotten
SECTIONS = [
    ("images-3min", "Images: every recipe at an equal wall-time budget of 3 minutes (mnist-5k)"),
    ("images-3min-unconditional", "Images: the default recipe without labels, 3 minutes"),
    ("images-15min", "Images: the default recipe after 15 minutes"),
    ("toy2d", "2D mixtures of Gaussians (ring8, grid25), 5 seeds"),
    ("stacked-mnist", "Stacked MNIST (1,000 modes), 3 seeds"),
    ("img2img", "Image to image: reconstruction alone, adversarial alone, both, and the baselines (inpaint "
                "here with a D 32 wide that does not see the mask; the recipe's D in the next table)"),
    ("img2img-inpaint", "Inpainting with the recipe's D (16 wide, seeing the mask), each lr schedule fitted to the "
                        "budget"),
    ("img2img-photos", "Super-resolution of natural photos (x4), scored on whole held-out photos"),
    ("unpaired", "Unpaired translation (CycleGAN): label preservation, FID to the target domain, cycle L1"),
    ("unpaired-cycle-b", "Unpaired translation (CycleGAN) with a lighter B -> A -> B cycle on the texture-rich side "
                         "(task.cycle_b), at equal steps: 10 (the recipe), then 1; then 0.1 and 0"),
    ("unpaired-cycle-b-full", "The same at the recipe's full 4,000 steps, seed 0: the recipe, then task.cycle_b=1 "
                              "(B -> A labels and FID better, A -> B FID worse)"),
    ("unpaired-cut", "Unpaired translation one way (CUT): label preservation and FID to domain B"),
    ("data", "Own data at scale: a prepared set of 50,000 images at 128x128x3, from disk and in memory"),
    ("limited", "Limited data: 250 to 5,000 digits, without augmentation, with DiffAugment, with ADA"),
    ("limited-10min", "Limited data, 10 minutes a run: 500 digits, where D overfits without augmentation"),
    ("augment", "Generated data for classifiers: CAS and augmentation of small training sets"),
    ("augment-diffaugment", "Generated data for classifiers, the GAN trained with DiffAugment"),
    ("speed", "Speed: gankit's trainer against the plain PyTorch DCGAN loop"),
    ("speed-amx", "Speed on an Intel Xeon with AMX-BF16: the same benchmark"),
    ("speed-avx2", "Speed on an AMD EPYC with AVX2 and no bf16 units: the same benchmark, in fp32"),
    ("overhead", "Small nets (the 2D recipes): steps/s and the share of a step outside PyTorch's operators"),
    ("eval-cost", "What evaluation costs: `gankit eval` phase by phase, and metrics during training"),
    ("precision", "fp32 against bf16 autocast at equal steps, 3 seeds"),
    ("precision-2d", "fp32 against bf16 autocast at equal steps: the 2D recipes, 3 seeds"),
    ("precision-stacked", "fp32 against bf16 autocast at equal steps: Stacked MNIST, 3 seeds"),
    ("precision-img2img", "fp32 against bf16 autocast at equal steps: the image-to-image recipes"),
    ("precision-unpaired", "fp32 against bf16 autocast at equal steps: the unpaired recipes (CycleGAN, CUT)"),
]
HEADER = """# Results

Every table below is a fragment written by the command above it (`docs/results/*.md`), on the hardware it
names; `python benchmarks/results.py` assembles this page from them. What was tried and did not pay is in
[negative-results.md](negative-results.md); how the metrics are computed is in the README's "Evaluation".
"""


def fragments() -> dict:
    found = {p.stem: p.read_text().strip() for p in sorted(FRAGMENTS.glob("*.md"))}
    unknown = sorted(set(found) - {name for name, _ in SECTIONS})
    if unknown:
        sys.exit(f"docs/results/{unknown[0]}.md has no section in benchmarks/results.py: add it to SECTIONS")
    return found


def results_page(found: dict) -> str:
    parts = [HEADER]
    for name, title in SECTIONS:
        if name in found:
            parts.append(f"## {title}\n\n{found[name]}\n")
    return "\n".join(parts)


def with_readme_blocks(readme: str, found: dict) -> str:
    """Replace each `<!-- results:NAME -->...<!-- /results:NAME -->` block by fragment NAME."""
    def fill(m: re.Match) -> str:
        name = m.group(1)
        if name not in found:
            sys.exit(f"README names results fragment '{name}', but docs/results/{name}.md does not exist")
        return f"<!-- results:{name} -->\n{found[name]}\n<!-- /results:{name} -->"
    return re.sub(r"<!-- results:([\w-]+) -->.*?<!-- /results:\1 -->", fill, readme, flags=re.S)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="only check that both pages match the fragments")
    a = ap.parse_args()
    found = fragments()
    targets = {ROOT / "docs" / "results.md": results_page(found),
               ROOT / "README.md": with_readme_blocks((ROOT / "README.md").read_text(), found)}
    stale = [p for p, text in targets.items() if not p.is_file() or p.read_text() != text]
    if a.check:
        for p in stale:
            print(f"{p.relative_to(ROOT)} is out of date: run python benchmarks/results.py")
        return 1 if stale else 0
    for p in stale:
        p.write_text(targets[p])
        print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
