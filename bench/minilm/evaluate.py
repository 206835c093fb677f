"""Quality of a (pruned) model: (a) mean cosine similarity of its sentence embeddings to
the dense model's on held-out news sentences; (b) TREC question classification accuracy
of a multinomial logistic regression trained on its embeddings."""
import numpy as np

from . import data

L2 = 0.03           # chosen on a split of the TREC training set (choose_l2.py), never on its test set
ITERATIONS = 100     # enough: on that split 100 and 300 iterations give the same accuracy


def mean_cosine(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.mean(np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


# ---- multinomial logistic regression, full-batch L-BFGS ------------------------------
def _loss_and_gradient(w, z, y, l2):
    """Mean cross-entropy + l2/2 ||W||² (the bias row is not penalised) and its gradient."""
    logits = z @ w
    logits -= logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    rows = np.arange(len(y))
    loss = -log_p[rows, y].mean() + 0.5 * l2 * np.sum(w[:-1] ** 2)
    p = np.exp(log_p)
    p[rows, y] -= 1
    grad = z.T @ p / len(y)
    grad[:-1] += l2 * w[:-1]
    return loss, grad


def _lbfgs(f, w, iterations, memory=10):
    loss, grad = f(w)
    s_list, y_list = [], []
    for _ in range(iterations):
        # two-loop recursion: direction = -(inverse Hessian estimate) @ grad
        q = grad.copy()
        alphas = []
        for s, yv in reversed(list(zip(s_list, y_list))):
            a = np.sum(s * q) / np.sum(yv * s)
            alphas.append(a)
            q -= a * yv
        if s_list:
            q *= np.sum(s_list[-1] * y_list[-1]) / np.sum(y_list[-1] ** 2)
        else:
            q /= max(np.linalg.norm(grad), 1e-12)
        for (s, yv), a in zip(zip(s_list, y_list), reversed(alphas)):
            q += (a - np.sum(yv * q) / np.sum(yv * s)) * s
        direction = -q
        slope = np.sum(grad * direction)
        if slope >= 0:                       # not a descent direction: restart from the gradient
            s_list, y_list = [], []
            direction, slope = -grad, -np.sum(grad * grad)
        step = 1.0
        while True:                          # backtracking until the Armijo condition holds
            new_loss, new_grad = f(w + step * direction)
            if new_loss <= loss + 1e-4 * step * slope or step < 1e-10:
                break
            step *= 0.5
        s, yv = step * direction, new_grad - grad
        w, loss, grad = w + s, new_loss, new_grad
        if np.sum(s * yv) > 1e-12:
            s_list.append(s)
            y_list.append(yv)
            if len(s_list) > memory:
                s_list.pop(0)
                y_list.pop(0)
        if np.linalg.norm(grad) < 1e-7:
            break
    return w


class LogisticRegression:
    """Features standardised on the training set, then softmax regression; deterministic."""

    def __init__(self, l2=L2, iterations=ITERATIONS):
        self.l2, self.iterations = l2, iterations

    def _design(self, x):
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        return np.hstack([z, np.ones((len(z), 1))])

    def fit(self, x, y, classes):
        x = np.asarray(x, dtype=np.float64)
        self.mean = x.mean(axis=0)
        self.scale = np.maximum(x.std(axis=0), 1e-12)
        z, y = self._design(x), np.asarray(y)
        w = np.zeros((z.shape[1], classes))
        self.w = _lbfgs(lambda v: _loss_and_gradient(v, z, y, self.l2), w, self.iterations)
        return self

    def predict(self, x):
        return np.argmax(self._design(x) @ self.w, axis=1)


def trec_accuracy_of(train_x, train_y, test_x, test_y, l2=L2):
    clf = LogisticRegression(l2).fit(train_x, train_y, len(data.TREC_CLASSES))
    return float(np.mean(clf.predict(test_x) == np.asarray(test_y)))


def bootstrap_std(values, samples=2000, seed=20261201):
    """Standard deviation of the mean of values (per-item scores: 0/1 correct, cosines)
    over bootstrap resamples of the items, with a fixed seed. Rows resampled with the
    same seed and item count use the same resamples (paired)."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    for i in range(samples):
        means[i] = values[rng.integers(0, len(values), len(values))].mean()
    return float(means.std())


CACHE_VERSION = 1    # bump when the forward pass or the tokenizer changes what they compute


def _digest(dense, parts):
    """A key of the dense model's weights and the evaluation sets."""
    import hashlib
    h = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    for name in sorted(dense.tensors):
        h.update(name.encode())
        h.update(np.ascontiguousarray(dense.tensors[name]).tobytes())
    for part in parts:
        h.update(repr(part).encode("utf-8"))
    return h.hexdigest()[:24]


class Evaluator:
    """Holds the tokenized evaluation sets, the dense model's held-out embeddings and a
    classifier fitted on the dense model's TREC training embeddings.

    evaluate(model) gives
      heldout_cosine: mean cosine to the dense embeddings on the held-out sentences;
      trec_accuracy: a classifier fitted on the model's own training embeddings (the usual
        protocol: what information the embeddings still carry); costs a forward pass over
        all 5381 questions, skipped (None) with retrain=False;
      trec_accuracy_dense_classifier: the dense model's classifier on the model's test
        embeddings (do they still fit the dense space); needs the 1077 test questions only.

    trec=False leaves TREC out altogether (no TREC data needed; evaluate() then gives
    the cosine only). cache: a folder where the tokenized sets and the dense model's
    embeddings are kept between runs, in a file named by a digest of the dense model's
    weights, the sentences, the questions and max_length (a changed input is a new
    file); setup_seconds is what computing them took (also when read from the cache)."""

    def __init__(self, dense, tokenizer, heldout=2000, max_length=128, retrain=True, batch_tokens=4096,
                 trec=True, cache=None):
        import time
        self.batch_tokens, self.retrain, self.with_trec = batch_tokens, retrain, trec
        sentences = data.heldout(heldout)
        train_q, self.train_y, test_q, self.test_y = data.trec() if trec else ([], [], [], [])
        path = None
        if cache is not None:
            import os
            path = os.path.join(cache, "evaluator-%s.pkl" % _digest(dense, (sentences, train_q, self.train_y, test_q,
                                                                            self.test_y, max_length)))
            if os.path.isfile(path):
                import pickle
                with open(path, "rb") as f:
                    self.__dict__.update(pickle.load(f))
                self.from_cache = True
                self.batch_tokens, self.retrain = batch_tokens, retrain
                return
        start = time.perf_counter()
        self.heldout_ids = tokenizer.encode_all(sentences, max_length)
        self.train_ids = tokenizer.encode_all(train_q, max_length) if trec else []
        self.test_ids = tokenizer.encode_all(test_q, max_length) if trec else []
        self.dense_heldout = self._embed(dense, self.heldout_ids)
        self.dense_train = self._embed(dense, self.train_ids) if trec else None
        self.dense_test = self._embed(dense, self.test_ids) if trec else None
        self.dense_classifier = (LogisticRegression().fit(self.dense_train, self.train_y, len(data.TREC_CLASSES))
                                 if trec else None)
        self.setup_seconds = time.perf_counter() - start
        self.from_cache = False
        if path is not None:
            import os
            import pickle
            import tempfile
            os.makedirs(cache, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=cache, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                pickle.dump({k: v for k, v in self.__dict__.items() if k not in ("batch_tokens", "retrain")}, f,
                            protocol=4)
            os.replace(tmp, path)

    def _embed(self, model, ids):
        return model.embed(ids, batch_tokens=self.batch_tokens)

    def heldout_cosines(self, model):
        """The cosine of each held-out sentence's embedding to the dense model's."""
        a = np.asarray(self._embed(model, self.heldout_ids), dtype=np.float64)
        b = np.asarray(self.dense_heldout, dtype=np.float64)
        return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    def heldout_cosine(self, model):
        return float(np.mean(self.heldout_cosines(model)))

    def trec_correct(self, model):
        """(correct with a refitted classifier or None, correct with the dense
        classifier): one bool per test question."""
        if not self.with_trec:
            raise ValueError("this Evaluator was made with trec=False")
        test = self._embed(model, self.test_ids)
        y = np.asarray(self.test_y)
        frozen = self.dense_classifier.predict(test) == y
        if not self.retrain:
            return None, frozen
        clf = LogisticRegression().fit(self._embed(model, self.train_ids), self.train_y, len(data.TREC_CLASSES))
        return clf.predict(test) == y, frozen

    def trec(self, model):
        """(trec_accuracy or None, trec_accuracy_dense_classifier)."""
        retrained, frozen = self.trec_correct(model)
        return (None if retrained is None else float(np.mean(retrained))), float(np.mean(frozen))

    def evaluate(self, model):
        out = {"heldout_cosine": self.heldout_cosine(model)}
        if self.with_trec:
            retrained, frozen = self.trec(model)
            out.update(trec_accuracy=retrained, trec_accuracy_dense_classifier=frozen)
        return out
