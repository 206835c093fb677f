"""Writes reference_embeddings.npy: sentence-transformers' embeddings of reference.SENTENCES.
Needs torch and sentence-transformers (not the product); run once by hand:

    python3 -m bench.minilm.make_reference
"""
import numpy as np

from . import paths, reference


def main():
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(paths.checkpoint_dir(), device="cpu")
    model.max_seq_length = reference.MAX_LENGTH
    with torch.no_grad():
        e = model.encode(reference.SENTENCES, batch_size=len(reference.SENTENCES), convert_to_numpy=True)
    np.save(reference.FILE, e.astype(np.float32))
    print(f"wrote {reference.FILE}: {e.shape} (torch {torch.__version__}, "
          f"sentence-transformers {sentence_transformers.__version__})")


if __name__ == "__main__":
    main()
