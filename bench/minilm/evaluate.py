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
    """Holds the tokenized evaluation sets, the dense model's held-out embeddings and a
    classifier fitted on the dense model's TREC training embeddings.

    evaluate(model) gives
      heldout_cosine: mean cosine to the dense embeddings on the held-out sentences;
      trec_accuracy: a classifier fitted on the model's own training embeddings (the usual
        protocol: what information the embeddings still carry); costs a forward pass over
        all 5381 questions, skipped (None) with retrain=False;
      trec_accuracy_dense_classifier: the dense model's classifier on the model's test
        embeddings (do they still fit the dense space); needs the 1077 test questions only."""

    def __init__(self, dense, tokenizer, heldout=2000, max_length=128, retrain=True, batch_tokens=4096):
        self.batch_tokens, self.retrain = batch_tokens, retrain
        self.heldout_ids = tokenizer.encode_all(data.heldout(heldout), max_length)
        train_q, self.train_y, test_q, self.test_y = data.trec()
        self.train_ids = tokenizer.encode_all(train_q, max_length)
        self.test_ids = tokenizer.encode_all(test_q, max_length)
        self.dense_heldout = self._embed(dense, self.heldout_ids)
        self.dense_train = self._embed(dense, self.train_ids)
        self.dense_classifier = LogisticRegression().fit(self.dense_train, self.train_y, len(data.TREC_CLASSES))

    def _embed(self, model, ids):
        return model.embed(ids, batch_tokens=self.batch_tokens)

    def heldout_cosine(self, model):
        return mean_cosine(self._embed(model, self.heldout_ids), self.dense_heldout)

    def trec(self, model):
        """(trec_accuracy or None, trec_accuracy_dense_classifier)."""
        test = self._embed(model, self.test_ids)
        frozen = float(np.mean(self.dense_classifier.predict(test) == np.asarray(self.test_y)))
        if not self.retrain:
            return None, frozen
        return trec_accuracy_of(self._embed(model, self.train_ids), self.train_y, test, self.test_y), frozen

    def evaluate(self, model):
        retrained, frozen = self.trec(model)
        return {"heldout_cosine": self.heldout_cosine(model), "trec_accuracy": retrained,
                "trec_accuracy_dense_classifier": frozen}
