"""Checks of the NumPy MiniLM package that need no torch: the forward pass against stored
sentence-transformers embeddings, embedding properties, the hooks and grams, sequential
calibration, the pruner, the data splits and the logistic regression. Prints one line
per failed check and 'N passed, M failed' (or a skip reason when the data packages are
missing); exit status 1 on any failure.

    python3 -m bench.minilm.selfcheck
"""
import sys
import time

from . import paths

try:
    import numpy as np
except ImportError:            # reported as a skip in main()
    np = None

passed = failed = 0


def expect(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL", what)


def identity(name, w, h):
    return w


def check_tokenizer(tok):
    ids = tok.encode("Héllo, naïve café!", 128)
    expect(tok.tokenize("Héllo, naïve café!") == ["hello", ",", "naive", "cafe", "!"], "accents stripped, punctuation split")
    expect(ids[0] == tok.cls_id and ids[-1] == tok.sep_id, "[CLS] first, [SEP] last")
    expect(tok.wordpiece("unaffable") == ["una", "##ffa", "##ble"], "greedy longest-match wordpieces")
    expect(tok.wordpiece("x" * 101) == [tok.unk], "an over-long word is [UNK]")
    expect(len(tok.encode("word " * 500, 128)) == 128, "truncation to max_length with [SEP] kept")
    ids, mask = tok.batch(["a b c", "a"], 128)
    expect(ids.shape == (2, 5) and mask.sum(axis=1).tolist() == [5, 3] and ids[1, 3:].tolist() == [tok.pad_id] * 2,
           "batch padded to the longest with an attention mask")


def check_forward(model, tok):
    from . import reference
    ids = tok.encode_all(reference.SENTENCES, reference.MAX_LENGTH)
    e = model.embed(ids)
    stored = np.load(reference.FILE)
    diff = float(np.abs(e - stored).max())
    expect(diff < 1e-4, f"embeddings equal sentence-transformers' within 1e-4 (max |diff| {diff:.2e})")
    expect(np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5), "embeddings have unit norm")
    expect(np.array_equal(e, model.embed(ids)), "the same input gives bit-identical embeddings")
    alone = np.concatenate([model.embed([i]) for i in ids[:4]])
    expect(np.abs(alone - e[:4]).max() < 1e-5, "a sentence's embedding does not depend on its batch")
    sim = e[:6] @ e[:6].T
    pairs = [(0, 1), (2, 3), (4, 5)]
    paraphrase = min(sim[i, j] for i, j in pairs)
    unrelated = max(sim[i, j] for i in range(6) for j in range(6) if i != j and (min(i, j), max(i, j)) not in pairs)
    expect(paraphrase > unrelated + 0.3, f"paraphrases ({paraphrase:.3f}) beat unrelated pairs ({unrelated:.3f}) by 0.3")


def check_grams(model, calib_ids):
    from .calibrate import collect_grams, gram, prune_sequential
    from .model import linear_name
    seen = {}

    def hook(name, x):
        seen.setdefault(name, []).append(np.array(x, dtype=np.float64))

    model.embed(calib_ids, hook=hook)
    real_tokens = sum(len(i) for i in calib_ids)
    expect(len(seen) == 36 and all(sum(len(x) for x in xs) == real_tokens for xs in seen.values()),
           "the hook sees all 36 linear inputs, real tokens only")
    grams = collect_grams(model, calib_ids)
    worst = 0.0
    for name in (linear_name(0, "attention.self.key"), linear_name(3, "attention.output.dense"),
                 linear_name(5, "output.dense")):
        x = np.concatenate(seen[name])
        h, tokens = grams[name]
        exact = x.T @ x
        worst = max(worst, np.abs(h - exact).max() / np.abs(exact).max())
        expect(tokens == real_tokens, f"{name}: token count")
    expect(worst < 1e-5, f"collected H equals XᵀX of the hooked inputs (relative {worst:.1e})")
    h, _ = gram([np.ones((3, 2), np.float32), np.full((2, 2), 2, np.float32)])
    expect(np.array_equal(h, np.full((2, 2), 11.0)), "gram sums XᵀX over blocks")

    # with nothing pruned, the sequential H's are the dense model's
    seen_h = {}

    def keep_h(name, w, h):
        seen_h[name] = h
        return w

    same, infos = prune_sequential(model, calib_ids, keep_h)
    worst = max(np.abs(seen_h[n] - grams[n][0]).max() / np.abs(grams[n][0]).max() for n in seen_h)
    expect(len(infos) == 36 and worst < 1e-5, f"sequential H of an unpruned model = one-shot H (relative {worst:.1e})")
    expect(all(i.relative_error == 0 for i in infos), "an unchanged layer has relative error 0")
    seen_h.clear()
    prune_sequential(model, calib_ids, keep_h, within_layer="parallel")
    worst = max(np.abs(seen_h[n] - grams[n][0]).max() / np.abs(grams[n][0]).max() for n in seen_h)
    expect(len(seen_h) == 36 and worst < 1e-5, f"the same with within_layer='parallel' (relative {worst:.1e})")
    return grams


def check_pruning(model, tok, calib_ids, heldout_ids, grams):
    from .calibrate import prune_one_shot, prune_sequential, relative_output_error
    from .evaluate import mean_cosine
    from .model import linear_name
    from .pruners import magnitude_nm
    dense = model.embed(heldout_ids)
    prune = magnitude_nm(2, 4)
    target = linear_name(0, "intermediate.dense")
    w = model.linears[target]
    pruned_w = prune(target, w.copy(), None)
    groups = (pruned_w.reshape(w.shape[0], -1, 4) != 0).sum(axis=-1)
    expect(np.all(groups <= 2) and np.mean(groups) > 1.99, "magnitude 2:4 keeps 2 of every 4 inputs")
    groups_w, groups_p = np.abs(w.reshape(w.shape[0], -1, 4)), np.abs(pruned_w.reshape(w.shape[0], -1, 4))
    smallest_kept = np.where(groups_p > 0, groups_w, np.inf).min(axis=-1)
    largest_dropped = np.where(groups_p == 0, groups_w, -np.inf).max(axis=-1)
    expect(np.all((pruned_w == w) | (pruned_w == 0)) and np.all(smallest_kept >= largest_dropped),
           "the kept weights are unchanged and the largest of their group")
    one_layer = model.with_linears({target: pruned_w})
    cos = mean_cosine(one_layer.embed(heldout_ids), dense)
    expect(cos < 0.9999, f"pruning one layer lowers the held-out cosine ({cos:.5f})")
    pruned, infos = prune_sequential(model, calib_ids, prune)
    cos_all = mean_cosine(pruned.embed(heldout_ids), dense)
    expect(cos_all < cos, f"pruning all 36 lowers it further ({cos_all:.5f})")
    expect(np.array_equal(model.linears[target], w), "calibration leaves the input model unchanged")
    expect(all(0 < i.relative_error < 1 for i in infos), "2:4 relative errors lie in (0, 1)")
    one_shot, _ = prune_one_shot(model, calib_ids, prune, grams=grams)
    expect(all(np.array_equal(one_shot.linears[n], pruned.linears[n]) for n in pruned.linears),
           "magnitude ignores H: one-shot and sequential give the same weights")
    h = grams[target][0]
    expect(relative_output_error(w, np.zeros_like(w), h) == 1.0, "pruning everything has relative error 1")
    check_dense_target(model, calib_ids, heldout_ids, dense, prune)


def check_dense_target(model, calib_ids, heldout_ids, dense, prune):
    from .calibrate import cross_gram, dense_target, gram, prune_sequential
    from .evaluate import mean_cosine
    rng = np.random.default_rng(3)
    x = [rng.standard_normal((40, 6)).astype(np.float32) for _ in range(2)]
    xd = [a + 0.3 * rng.standard_normal(a.shape).astype(np.float32) for a in x]
    w = rng.standard_normal((5, 6)).astype(np.float32)
    h, _ = gram(x)
    fit = dense_target(w, h, cross_gram(x, xd), damping=0.0)
    lstsq = np.linalg.lstsq(np.concatenate(x).astype(np.float64), np.concatenate(xd) @ w.T.astype(np.float64),
                            rcond=None)[0].T
    expect(np.abs(fit - lstsq).max() < 1e-4, "dense_target is the least-squares fit of the dense outputs")
    same = dense_target(w, h, h, damping=0.0)
    expect(np.abs(same - w).max() < 1e-4, "dense_target of undisturbed inputs is W")
    # with nothing pruned the inputs are the dense ones (C = H): every target is W itself
    unpruned, _ = prune_sequential(model, calib_ids, lambda name, w, h: w, target="dense")
    worst = max(np.abs(unpruned.linears[n] - model.linears[n]).max() / np.abs(model.linears[n]).max()
                for n in model.linears)
    cos = mean_cosine(unpruned.embed(heldout_ids), dense)
    expect(worst < 1e-3 and cos > 0.99999, f"target 'dense' with nothing pruned is the dense model "
                                            f"(relative {worst:.1e}, cosine {cos:.6f})")
    try:
        prune_sequential(model, calib_ids, prune, within_layer="parallel", target="dense")
        expect(False, "target 'dense' with within_layer 'parallel' is refused")
    except ValueError:
        expect(True, "")


def check_data():
    from . import data
    calibration, heldout = data.calibration(512), data.heldout(2000)
    expect(len(set(calibration)) == 512 and len(set(heldout)) == 2000, "calibration and held-out sizes, no repeats")
    expect(not set(data._pools()[0]) & set(data._pools()[1]), "calibration and held-out sentences are disjoint")
    expect(all(data.MIN_WORDS <= len(s.split()) <= data.MAX_WORDS for s in calibration + heldout), "5..64 words")
    expect(calibration == data.calibration(512)[:512], "the selection is deterministic")
    expect(data.split_sentences("Mr. Smith went to the U.S. on Monday. He left! Did he? Yes.") ==
           ["Mr. Smith went to the U.S. on Monday.", "He left!", "Did he?", "Yes."], "sentence splitter")
    train_q, train_y, test_q, test_y = data.trec()
    expect(not set(train_q) & set(test_q), "TREC train and test questions are disjoint")
    expect(set(train_y) == set(test_y) == set(range(6)), "TREC: all six coarse classes in train and test")
    expect(data.parse_trec(["NUM:date When ?", "NUM:date When ?", "HUM:ind Who ?", "HUM:gr Who ?",
                            "LOC:city Where ?", "HUM:ind Where ?"]) == {"When ?": "NUM", "Who ?": "HUM"},
           "TREC parsing: duplicates once, conflicting labels dropped")


def check_logistic_regression():
    from .evaluate import LogisticRegression, trec_accuracy_of
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((6, 20)) * 3
    y = rng.integers(0, 6, 600)
    x = centres[y] + rng.standard_normal((600, 20))
    acc = trec_accuracy_of(x[:400], y[:400], x[400:], y[400:])
    expect(acc > 0.95, f"logistic regression separates separable classes ({acc:.3f})")
    w1 = LogisticRegression().fit(x, y, 6).w
    expect(np.array_equal(w1, LogisticRegression().fit(x, y, 6).w), "logistic regression is deterministic")
    shuffled = trec_accuracy_of(x[:400], rng.permutation(y[:400]), x[400:], y[400:])
    expect(shuffled < 0.4, f"shuffled labels give chance accuracy ({shuffled:.3f})")


def main():
    reason = "numpy is not installed (pip install numpy)" if np is None else paths.missing()
    if reason:
        print(f"skipped: {reason}")
        print("0 passed, 0 failed")
        return 0
    from . import data
    from .model import MiniLM
    from .tokenizer import Tokenizer
    start = time.perf_counter()
    tok = Tokenizer.from_file()
    model = MiniLM.load()
    calib_ids = tok.encode_all(data.calibration(16), 128)
    heldout_ids = tok.encode_all(data.heldout(48), 128)
    check_tokenizer(tok)
    check_forward(model, tok)
    grams = check_grams(model, calib_ids)
    check_pruning(model, tok, calib_ids, heldout_ids, grams)
    check_data()
    check_logistic_regression()
    print(f"bench/minilm selfcheck: {time.perf_counter() - start:.1f} s")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
