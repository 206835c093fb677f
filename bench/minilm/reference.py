"""Fixed sentences whose sentence-transformers embeddings are stored in
reference_embeddings.npy (written by make_reference.py), so the NumPy forward pass is
checked against the reference implementation without torch."""
import os

MAX_LENGTH = 256        # sentence-transformers' max_seq_length for this model
FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference_embeddings.npy")

SENTENCES = [
    "A man is playing a guitar.",
    "A person plays the guitar.",
    "The cat sits on the mat.",
    "A cat is sitting on a rug.",
    "The stock market fell sharply today.",
    "Share prices dropped steeply on Tuesday.",
    "Héllo, naïve café owners! Prices rose 3.5% (year-on-year) in São Paulo; \"really?\"",
    "Tokyo 東京 and the U.S.A. signed a $1,000,000 deal at 10:30 a.m.",
    "x",
    # longer than MAX_LENGTH tokens: checks truncation
    " ".join(["The committee met again on Tuesday to discuss the budget."] * 30),
]
