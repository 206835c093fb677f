"""How evaluate.L2 was chosen: the dense model's TREC training questions split 80/20
(seeded), a logistic regression per candidate strength, accuracy on the 20%. The TREC
test questions are not used.

    python3 -m bench.minilm.choose_l2
"""
import random

import numpy as np

from . import data
from .evaluate import trec_accuracy_of
from .model import MiniLM
from .tokenizer import Tokenizer

CANDIDATES = (1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)


def main():
    questions, labels, _, _ = data.trec()
    order = list(range(len(questions)))
    random.Random(data.SEED + 4).shuffle(order)
    cut = int(0.8 * len(order))
    fit, check = order[:cut], order[cut:]
    e = MiniLM.load().embed(Tokenizer.from_file().encode_all(questions, 128))
    y = np.asarray(labels)
    for l2 in CANDIDATES:
        print(f"l2 {l2:g}: validation accuracy {trec_accuracy_of(e[fit], y[fit], e[check], y[check], l2):.4f}")


if __name__ == "__main__":
    main()
