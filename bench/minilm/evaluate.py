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


class Evaluator:
    """Holds the tokenized evaluation sets and the dense model's held-out embeddings, so
    each model evaluated costs two forward passes (held-out and TREC) and one fit."""

    def __init__(self, dense, tokenizer, heldout=2000, max_length=128, batch_tokens=4096):
        self.batch_tokens = batch_tokens
        self.heldout_ids = tokenizer.encode_all(data.heldout(heldout), max_length)
        train_q, self.train_y, test_q, self.test_y = data.trec()
        self.trec_ids = tokenizer.encode_all(train_q + test_q, max_length)
        self.train_count = len(train_q)
        self.dense_heldout = dense.embed(self.heldout_ids, batch_tokens=batch_tokens)

    def heldout_cosine(self, model):
        return mean_cosine(model.embed(self.heldout_ids, batch_tokens=self.batch_tokens), self.dense_heldout)

    def trec_accuracy(self, model):
        e = model.embed(self.trec_ids, batch_tokens=self.batch_tokens)
        n = self.train_count
        return trec_accuracy_of(e[:n], self.train_y, e[n:], self.test_y)

    def evaluate(self, model):
        return {"heldout_cosine": self.heldout_cosine(model), "trec_accuracy": self.trec_accuracy(model)}
