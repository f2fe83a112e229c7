"""Generated data for classifiers: the Classification Accuracy Score and GAN-train / GAN-test.

- CAS (Ravuri & Vinyals 2019; "GAN-train" in Shmelkov et al. 2018 and StudioGAN): train a classifier only on
  a conditional G's labelled samples, test it on real images that neither G nor the classifier saw. It shows
  how much of each class G draws: BigGAN-deep at 128 px reaches 42.65% top-1 on ImageNet against 73% for
  real data.
- Beside it, the same classifier trained on the same number of real images of each class, tested on the
  same real images: what the generated set would have to match.
- GAN-test (Shmelkov et al. 2018): that real-trained classifier's accuracy on the generated samples, which
  is `cond_acc` read by a classifier of the same count.

The classifier is the feature extractor's architecture (classifier.py), trained from scratch for at least
`MIN_STEPS` steps whatever the set size, so that 10 images of each class train as long as 500 do.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional

import torch

from gankit.data import Dataset, class_balanced, subset
from gankit.metrics.classifier import Classifier, accuracy, fit

MIN_STEPS = 300
MIN_EPOCHS = 8


def train_on(x: torch.Tensor, c: torch.Tensor, num_classes: int, seed: int = 0, device="cpu") -> Classifier:
    """A fresh classifier trained on (x, c) (at least MIN_EPOCHS passes and MIN_STEPS steps of 128),
    reproducible from `seed`; the caller's global RNG is left as it was."""
    epochs = max(MIN_EPOCHS, math.ceil(MIN_STEPS / max(len(x) // 128, 1)))
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return fit(Classifier(tuple(x.shape[1:]), num_classes), x, c, epochs, g, device)


def labels_for(per_class: int, num_classes: int) -> torch.Tensor:
    """(per_class * num_classes,) labels: per_class of each class, in class order."""
    return torch.arange(num_classes).repeat_interleave(per_class)


def cas(draw: Callable[[torch.Tensor], torch.Tensor], train: Dataset, test: Dataset, per_class: Optional[int] = None,
        seed: int = 0, device="cpu", real_model: Optional[Classifier] = None) -> Dict[str, float]:
    """CAS of `draw(labels) -> images` (labels (N,) int64; images (N, C, H, W) in [-1, 1]): a classifier
    trained on `per_class` drawn images of each class (default: the smallest class of `train`), tested on
    `test`; beside it `cas_real`, one trained on `per_class` real images of each class of `train` (a fixed,
    class-balanced choice), and `gan_test`, that real classifier's accuracy on the drawn images.
    `real_model` reuses a real-trained classifier (the same for every G of one data set and count)."""
    k = train.num_classes
    if per_class is None:
        per_class = int(torch.bincount(train.c, minlength=k).min())
    labels = labels_for(per_class, k)
    fake = draw(labels).float().cpu()
    if real_model is None:
        real_model = real_classifier(train, per_class, seed, device)
    gen_model = train_on(fake, labels, k, seed, device)
    return {"cas": accuracy(gen_model, test.x, test.c), "cas_real": accuracy(real_model, test.x, test.c),
            "gan_test": accuracy(real_model, fake, labels), "cas_per_class": per_class, "cas_test_n": len(test)}


def real_classifier(train: Dataset, per_class: int, seed: int = 0, device="cpu") -> Classifier:
    """The classifier trained on `per_class` real images of each class of `train` (seed 0's choice)."""
    real = subset(train, class_balanced(train, per_class, "--per-class")[0])
    return train_on(real.x, real.c, train.num_classes, seed, device)
