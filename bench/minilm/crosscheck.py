"""Compares this package with the reference implementations: the tokenizer with the
`tokenizers` package, the embeddings with sentence-transformers. Needs torch,
sentence-transformers and tokenizers, which the product does not; run it by hand:

    python3 -m bench.minilm.crosscheck [--sentences 100]
"""
import argparse
import time

import numpy as np

from . import data, paths, reference
from .model import MiniLM
from .tokenizer import Tokenizer


def tokenizer_agreement(texts, max_length):
    from tokenizers import Tokenizer as Reference
    reference = Reference.from_file(paths.checkpoint_file("tokenizer.json"))
    reference.enable_truncation(max_length)
    reference.no_padding()
    ours = Tokenizer.from_file()
    mismatches = [t for t in texts if reference.encode(t).ids != ours.encode(t, max_length)]
    return 1 - len(mismatches) / len(texts), mismatches


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=100, help="sentences for the embedding comparison")
    args = parser.parse_args()

    calibration = data.calibration(512)
    heldout = data.heldout(2000)
    trec = data.trec()
    articles = [text for _, text in data.news_articles()[:200]]      # long: truncation decides
    for label, texts in (("calibration 512", calibration), ("held-out 2000", heldout),
                         ("TREC questions", trec[0] + trec[2]), ("whole articles 200", articles),
                         ("reference sentences", reference.SENTENCES)):
        for max_length in (128, 256):
            share, bad = tokenizer_agreement(texts, max_length)
            print(f"tokenizer, {label}, max_length {max_length}: {share:.4%} identical ({len(bad)} differ)")
            for t in bad[:3]:
                print("   differs:", repr(t[:100]))

    from sentence_transformers import SentenceTransformer
    import torch
    st_model = SentenceTransformer(paths.checkpoint_dir(), device="cpu")
    texts = heldout[:args.sentences]
    ours = MiniLM.load()
    tok = Tokenizer.from_file()
    for max_length in (128, 256):
        st_model.max_seq_length = max_length
        with torch.no_grad():
            start = time.perf_counter()
            ref = st_model.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=False)
            ref_seconds = time.perf_counter() - start
        start = time.perf_counter()
        mine = ours.embed(tok.encode_all(texts, max_length))
        seconds = time.perf_counter() - start
        cosine = np.sum(ref * mine, axis=1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(mine, axis=1))
        print(f"embeddings, {len(texts)} held-out sentences, max_length {max_length}: "
              f"max |diff| {np.abs(ref - mine).max():.2e}, mean cosine {cosine.mean():.8f}, "
              f"min cosine {cosine.min():.8f} (sentence-transformers {ref_seconds:.2f} s, NumPy {seconds:.2f} s)")


if __name__ == "__main__":
    main()
