#!/usr/bin/env python3
"""Writes the small hand-made tokenizer.json files (and tokenizer_config.json files) that
the tokenizer package's tests load, one directory per family:

  gpt2/      byte-level BPE, ByteLevel pre-tokenizer with the GPT-2 regex, <|endoftext|>
  roberta/   as gpt2 plus add_prefix_space, RobertaProcessing and an lstrip <mask> token
  llama3/    Split with the Llama 3 regex + ByteLevel, ignore_merges, TemplateProcessing BOS
  qwen2/     NFC normalizer, Split with the Qwen2 regex, ChatML tokens, a single_word token
  llama2/    SentencePiece-style: Prepend/Replace normalizer, byte_fallback, Strip decoder
  metaspace/ Metaspace pre-tokenizer (prepend_scheme first, split), no byte fallback,
             fuse_unk, Metaspace decoder, "<s> $A </s>" template, truncation 12 (right)
  phi3/      llama2 plus Phi-3's rstrip chat tokens, truncation 24 (left)

The merges are learnt here from a small corpus by plain pair counting, so the files are
deterministic. Regenerate (from the package directory) with

  python3 testdata/make_tokenizers.py && python3 testdata/reference_bpe.py

The second script computes the expected ids (testdata/golden.json) independently of the
Go code. Only the Python standard library is used.
"""
import collections
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))

CORPUS = """
The quick brown fox jumps over the lazy dog. The dog was not amused, and the fox ran
away into the forest where the other foxes were waiting. Hello world! Hello, world.
How are you today? I'm fine, thanks. We'll see what they're doing; you've been there,
haven't you? She'd say it's the best thing that ever happened to the town.
Numbers: 1 2 3 10 12 100 123 1000 2024 2025 3.14159 42 7 99 1234567890.
def main():
    for i in range(10):
        print(i * 2)  # double it
    return None
if x == 1 and y != 2: print("hello world")
Tokenizers split text into words, and words into subword units that a model can embed.
The training data for a language model contains many languages: 日本語 and 中文 text,
naïve café résumé, and code. Training the model needs a tokenizer that is exact.
    indented   text  with   runs of    spaces and		tabs
line one
line two

line four
"""

BYTE_LEVEL_MERGES = 420
SPM_MERGES = 300


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return bs, [chr(c) for c in cs]


def learn_merges(words, n_merges):
    """words: Counter of tuples of symbols. Returns the merges, most frequent pair first
    (ties: smallest pair), applying each to all words before counting again."""
    words = dict(words)
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        (a, b), _ = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        merges.append((a, b))
        merged = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + c
        words = merged
    return merges


def byte_level_model(merge_format):
    bs, cs = bytes_to_unicode()
    b2c = dict(zip(bs, cs))
    vocab = {}
    for b in bs:
        vocab[b2c[b]] = len(vocab)
    pieces = re.findall(r" ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+", CORPUS)
    words = collections.Counter(tuple(b2c[x] for x in p.encode("utf-8")) for p in pieces)
    merges = learn_merges(words, BYTE_LEVEL_MERGES)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    # A token no merge sequence reaches: only ignore_merges (Llama 3) can produce it.
    vocab["Ġzyxq"] = len(vocab)
    if merge_format == "pairs":
        merges_json = [[a, b] for a, b in merges]
    else:
        merges_json = ["%s %s" % (a, b) for a, b in merges]
    return vocab, merges_json


def spm_model():
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    text = "▁" + CORPUS.replace(" ", "▁")
    chars = collections.Counter(text)
    # Leave some corpus characters out so that byte fallback and <unk> get exercised.
    for c in "語中\t":
        chars.pop(c, None)
    for c, _ in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0])):
        vocab.setdefault(c, len(vocab))
    words = collections.Counter()
    for w in re.findall(r"▁?[^▁]*", text):
        if w and all(c in vocab for c in w):
            words[tuple(w)] += 1
    merges = learn_merges(words, SPM_MERGES)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    return vocab, ["%s %s" % (a, b) for a, b in merges]


def added(id_, content, special=True, normalized=False, lstrip=False, rstrip=False, single_word=False):
    return {"id": id_, "content": content, "single_word": single_word, "lstrip": lstrip,
            "rstrip": rstrip, "normalized": normalized, "special": special}


def bpe(vocab, merges, **kw):
    m = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
         "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False}
    m.update(kw)
    m["vocab"] = vocab
    m["merges"] = merges
    return m


def doc(added_tokens, normalizer, pre, post, decoder, model, truncation=None):
    return {"version": "1.0", "truncation": truncation, "padding": None, "added_tokens": added_tokens,
            "normalizer": normalizer, "pre_tokenizer": pre, "post_processor": post,
            "decoder": decoder, "model": model}


def template(single_before, single_after, ids):
    items = [{"SpecialToken": {"id": t, "type_id": 0}} for t in single_before]
    items.append({"Sequence": {"id": "A", "type_id": 0}})
    items += [{"SpecialToken": {"id": t, "type_id": 0}} for t in single_after]
    return {"type": "TemplateProcessing", "single": items,
            "pair": items + [{"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {t: {"id": t, "ids": [ids[t]], "tokens": [t]} for t in single_before + single_after}}


BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
LLAMA3_RE = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_RE = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
SPM_DECODER = {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
    {"type": "ByteFallback"}, {"type": "Fuse"},
    {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
SPM_NORMALIZER = {"type": "Sequence", "normalizers": [
    {"type": "Prepend", "prepend": "▁"},
    {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}


def split(regex):
    return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}


def families():
    fams = {}
    vocab, merges = byte_level_model("strings")
    n = len(vocab)
    fams["gpt2"] = (doc([added(n, "<|endoftext|>", normalized=True)], None, BYTE_LEVEL,
                        dict(BYTE_LEVEL, trim_offsets=False), BYTE_LEVEL,
                        bpe(vocab, merges, continuing_subword_prefix="", end_of_word_suffix="")),
                    {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "pad_token": None})

    names = ["<s>", "<pad>", "</s>", "<unk>"]
    toks = [added(n + i, c, normalized=True) for i, c in enumerate(names)]
    toks.append(added(n + 4, "<mask>", lstrip=True))
    fams["roberta"] = (doc(toks, None, dict(BYTE_LEVEL, add_prefix_space=True),
                           {"type": "RobertaProcessing", "sep": ["</s>", n + 2], "cls": ["<s>", n],
                            "trim_offsets": True, "add_prefix_space": True},
                           BYTE_LEVEL, bpe(vocab, merges)),
                       {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"})

    vocab3, merges3 = byte_level_model("pairs")
    names = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    toks = [added(n + i, c) for i, c in enumerate(names)]
    ids = {t["content"]: t["id"] for t in toks}
    fams["llama3"] = (doc(toks, None,
                          {"type": "Sequence", "pretokenizers": [
                              split(LLAMA3_RE), dict(BYTE_LEVEL, use_regex=False)]},
                          {"type": "Sequence", "processors": [
                              dict(BYTE_LEVEL, trim_offsets=False),
                              template(["<|begin_of_text|>"], [], ids)]},
                          BYTE_LEVEL, bpe(vocab3, merges3, ignore_merges=True)),
                      {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "pad_token": None,
                       "chat_template": "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}"})

    toks = [added(n, "<|endoftext|>"), added(n + 1, "<|im_start|>"), added(n + 2, "<|im_end|>"),
            added(n + 3, "zz", special=False, normalized=True, single_word=True)]
    fams["qwen2"] = (doc(toks, {"type": "NFC"},
                         {"type": "Sequence", "pretokenizers": [
                             split(QWEN2_RE), dict(BYTE_LEVEL, use_regex=False)]},
                         dict(BYTE_LEVEL, trim_offsets=False), BYTE_LEVEL, bpe(vocab, merges)),
                     {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                      "chat_template": [{"name": "default", "template": "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"}]})

    svocab, smerges = spm_model()
    m = len(svocab)
    stoks = [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")]
    ids = {"<s>": 1, "</s>": 2}
    fams["llama2"] = (doc(stoks + [added(m, "<custom>", special=False, normalized=True)],
                          SPM_NORMALIZER, None, template(["<s>"], [], ids), SPM_DECODER,
                          bpe(svocab, smerges, unk_token="<unk>", fuse_unk=True, byte_fallback=True)),
                      {"bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": False,
                                     "normalized": False, "rstrip": False, "single_word": False},
                       "eos_token": "</s>", "pad_token": None,
                       "chat_template": "{% for m in messages %}{% if m['role'] == 'user' %}{{ bos_token + '[INST] ' + m['content'] + ' [/INST]' }}{% endif %}{% endfor %}"})

    meta = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": True}
    fams["metaspace"] = (doc(stoks, None, meta, template(["<s>"], ["</s>"], ids), meta,
                             bpe(svocab, smerges, unk_token="<unk>", fuse_unk=True, byte_fallback=False),
                             truncation={"direction": "Right", "max_length": 12, "strategy": "LongestFirst", "stride": 0}),
                         None)

    names = ["<|endoftext|>", "<|assistant|>", "<|end|>", "<|user|>", "<|system|>"]
    ptoks = stoks + [added(m + i, c, rstrip=(i > 0)) for i, c in enumerate(names)]
    fams["phi3"] = (doc(ptoks, SPM_NORMALIZER, None, template(["<s>"], [], ids), SPM_DECODER,
                        bpe(svocab, smerges, unk_token="<unk>", fuse_unk=False, byte_fallback=True),
                        truncation={"direction": "Left", "max_length": 24, "strategy": "LongestFirst", "stride": 0}),
                    {"bos_token": "<s>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
                     "chat_template": "{% for m in messages %}{{ '<|' + m['role'] + '|>\n' + m['content'] + '<|end|>\n' }}{% endfor %}"})
    return fams


def main():
    for name, (tok, cfg) in families().items():
        d = os.path.join(HERE, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tok, f, ensure_ascii=False, indent=1)
            f.write("\n")
        cfg_path = os.path.join(d, "tokenizer_config.json")
        if cfg is not None:
            with open(cfg_path, "w", encoding="utf-8") as f:
                json.dump(cfg, f, ensure_ascii=False, indent=1)
                f.write("\n")
        elif os.path.exists(cfg_path):
            os.remove(cfg_path)
        print("wrote", d, "vocab", len(tok["model"]["vocab"]), "merges", len(tok["model"]["merges"]))


if __name__ == "__main__":
    main()
