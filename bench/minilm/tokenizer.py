"""BERT WordPiece tokenization read from a Hugging Face tokenizer.json (uncased BERT:
BertNormalizer, BertPreTokenizer, WordPiece, [CLS] A [SEP]), in plain Python."""
import json
import unicodedata

import numpy as np

from . import paths


def _is_control(ch):
    # tab, newline and carriage return are whitespace, not control characters
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) in ("Zs", "Zl", "Zp")


def _is_punctuation(ch):
    # every ASCII non-alphanumeric printable counts, also $ + < = > ^ ` | ~ (Unicode symbols)
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


class Tokenizer:
    def __init__(self, spec):
        model = spec["model"]
        if model["type"] != "WordPiece":
            raise ValueError(f"not a WordPiece tokenizer: {model['type']}")
        self.vocab = model["vocab"]
        self.unk = model["unk_token"]
        self.prefix = model["continuing_subword_prefix"]
        self.max_word_chars = model["max_input_chars_per_word"]
        norm = spec["normalizer"]
        self.lowercase = norm.get("lowercase", True)
        accents = norm.get("strip_accents")
        self.strip_accents = self.lowercase if accents is None else accents   # None follows lowercase
        self.cls_id = self.vocab["[CLS]"]
        self.sep_id = self.vocab["[SEP]"]
        self.pad_id = self.vocab["[PAD]"]
        # special tokens marked normalized=False are matched in the raw text, before anything else
        self.specials = sorted((t["content"] for t in spec.get("added_tokens", []) if not t.get("normalized", True)),
                               key=len, reverse=True)

    @classmethod
    def from_file(cls, path=None):
        with open(path or paths.checkpoint_file("tokenizer.json"), encoding="utf-8") as f:
            return cls(json.load(f))

    def normalize(self, text):
        out = []
        for ch in text:
            if ch == "\x00" or ch == "\ufffd" or _is_control(ch):
                continue
            if _is_whitespace(ch):
                out.append(" ")
            elif _is_cjk(ord(ch)):
                out.append(f" {ch} ")
            else:
                out.append(ch)
        text = "".join(out)
        if self.strip_accents:
            text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
        return text.lower() if self.lowercase else text

    @staticmethod
    def split_words(text):
        """Whitespace split, with every punctuation character a word of its own."""
        words, current = [], []
        for ch in text:
            if _is_whitespace(ch) or _is_punctuation(ch):
                if current:
                    words.append("".join(current))
                    current = []
                if not _is_whitespace(ch):
                    words.append(ch)
            else:
                current.append(ch)
        if current:
            words.append("".join(current))
        return words

    def wordpiece(self, word):
        """Greedy longest-match-first pieces; a word with any unmatchable rest is [UNK]."""
        if len(word) > self.max_word_chars:
            return [self.unk]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else self.prefix + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            if end == start:
                return [self.unk]
            pieces.append(piece)
            start = end
        return pieces

    def _split_specials(self, text):
        parts = [(text, False)]
        for special in self.specials:
            next_parts = []
            for chunk, is_special in parts:
                if is_special:
                    next_parts.append((chunk, True))
                    continue
                pieces = chunk.split(special)
                for i, piece in enumerate(pieces):
                    if i:
                        next_parts.append((special, True))
                    next_parts.append((piece, False))
            parts = next_parts
        return parts

    def tokenize(self, text):
        tokens = []
        for chunk, is_special in self._split_specials(text):
            if is_special:
                tokens.append(chunk)
                continue
            for word in self.split_words(self.normalize(chunk)):
                tokens.extend(self.wordpiece(word))
        return tokens

    def encode(self, text, max_length=128):
        """Token ids [CLS] ... [SEP], the text's tokens cut to max_length - 2."""
        ids = [self.vocab[t] for t in self.tokenize(text)]
        return [self.cls_id] + ids[:max_length - 2] + [self.sep_id]

    def batch(self, texts, max_length=128):
        """ids (B x L int64, padded with [PAD] to the longest) and attention mask (B x L)."""
        encoded = [self.encode(t, max_length) for t in texts]
        width = max(len(e) for e in encoded)
        ids = np.full((len(encoded), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encoded), width), dtype=np.int64)
        for i, e in enumerate(encoded):
            ids[i, :len(e)] = e
            mask[i, :len(e)] = 1
        return ids, mask

    def encode_all(self, texts, max_length=128):
        return [self.encode(t, max_length) for t in texts]
