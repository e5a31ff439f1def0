#!/usr/bin/env python3
"""A deliberately straightforward reference for the tokenizer package's tests.

It reads the tokenizer.json files written by make_tokenizers.py and writes the expected
results to golden.json:
  - "splits": how each known pre-tokenizer regex cuts a list of texts;
  - "families": for each test tokenizer and text, the ids with and without special
    tokens and the decoded texts, plus decodes of every prefix of a few id lists.

Nothing here is shared with the Go code. The regexes are taken from the JSON (or, for the
ByteLevel pre-tokenizer, the GPT-2 regex that it hard-codes) and run by Python's own
backtracking `re` engine after \\p{L}, \\p{N}, \\s and \\S are rewritten into explicit
character classes computed from unicodedata (L* categories, N* categories, and the White_Space
set: U+0009-U+000D, U+0085 and the Zs/Zl/Zp categories); `re` itself does not know \\p{..}
and its \\s differs. BPE merges run the textbook way: repeatedly merge the adjacent pair of
lowest rank (leftmost on ties) by rescanning the whole word.

Regenerate, from the package directory, with

  python3 testdata/make_tokenizers.py && python3 testdata/reference_bpe.py

Known approximation: single_word checks Rust's Unicode \\w, which includes the
Other_Alphabetic property that unicodedata does not expose; this uses L*, M*, Nd, Nl, Pc
and the joiners, which agree on every test text.
"""
import json
import os
import random
import re
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
FAMILIES = ["gpt2", "roberta", "llama3", "qwen2", "llama2", "metaspace", "phi3"]
GPT2_RE = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"


# ---------------------------------------------------------------- character classes

def is_white_space(c):
    return c in "\t\n\x0b\x0c\r\x85" or unicodedata.category(c) in ("Zs", "Zl", "Zp")


def class_body(pred):
    """A regex character-class body (no brackets) matching the code points where pred holds."""
    parts, start = [], None
    for cp in range(0x110001):
        ok = cp < 0x110000 and not (0xD800 <= cp <= 0xDFFF) and pred(chr(cp))
        if ok and start is None:
            start = cp
        elif not ok and start is not None:
            end = cp - 1
            parts.append("\\U%08x" % start if start == end else "\\U%08x-\\U%08x" % (start, end))
            start = None
    return "".join(parts)


CLASS_L = class_body(lambda c: unicodedata.category(c).startswith("L"))
CLASS_N = class_body(lambda c: unicodedata.category(c).startswith("N"))
CLASS_S = class_body(is_white_space)


def translate(pattern):
    """Rewrite \\p{L}, \\p{N}, \\s, \\S for Python's re, inside and outside brackets."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        if pattern.startswith("\\p{L}", i) or pattern.startswith("\\p{N}", i) or pattern.startswith("\\s", i):
            body = {"L": CLASS_L, "N": CLASS_N}.get(pattern[i + 3], CLASS_S) if pattern[i + 1] == "p" else CLASS_S
            out.append(body if in_class else "[" + body + "]")
            i += 5 if pattern[i + 1] == "p" else 2
        elif pattern.startswith("\\S", i):
            assert not in_class
            out.append("[^" + CLASS_S + "]")
            i += 2
        elif pattern[i] == "\\":
            out.append(pattern[i:i + 2])
            i += 2
        else:
            if pattern[i] == "[":
                in_class = True
            elif pattern[i] == "]":
                in_class = False
            out.append(pattern[i])
            i += 1
    return re.compile("".join(out))


COMPILED = {}


def regex_split(pattern, s):
    """The Split pre-tokenizer with behavior Isolated: matches and the gaps between them."""
    if pattern not in COMPILED:
        COMPILED[pattern] = translate(pattern)
    pieces, last = [], 0
    for m in COMPILED[pattern].finditer(s):
        if m.start() > last:
            pieces.append(s[last:m.start()])
        if m.end() > m.start():
            pieces.append(m.group(0))
        last = m.end()
    if last < len(s):
        pieces.append(s[last:])
    return pieces


# ---------------------------------------------------------------- byte-level alphabet

def bytes_to_unicode():
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2C = bytes_to_unicode()
C2B = {c: b for b, c in B2C.items()}


# ---------------------------------------------------------------- the tokenizer

def is_word_char(c):
    cat = unicodedata.category(c)
    return cat[0] in "LM" or cat in ("Nd", "Nl", "Pc") or c in "\u200c\u200d"


class Reference:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.j = json.load(f)
        m = self.j["model"]
        assert m["type"] == "BPE"
        self.vocab = m["vocab"]
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self.ranks = {}
        for rank, merge in enumerate(m["merges"]):
            a, b = merge.split(" ") if isinstance(merge, str) else merge
            self.ranks[(a, b)] = rank
        self.added = []
        for t in self.j["added_tokens"]:
            t = dict(t)
            t["id"] = self.vocab.get(t["content"], t["id"])
            t["key"] = self.normalize(t["content"]) if t["normalized"] else t["content"]
            self.added.append(t)
            # tokenizers >= 0.23 decodes a normalized added token to its normalized form.
            self.id_to_token[t["id"]] = t["key"]
        self.special_texts = {t["content"] for t in self.added if t["special"]}

    # -- added tokens
    def find_matches(self, s, tokens):
        """Leftmost-longest matches, then single_word / lstrip / rstrip; returns a list of
        (start, end, token-or-None) covering s."""
        matches, i = [], 0
        while i < len(s):
            best = None
            for t in tokens:
                if s.startswith(t["key"], i) and (best is None or len(t["key"]) > len(best["key"])):
                    best = t
            if best is None:
                i += 1
                continue
            matches.append((i, i + len(best["key"]), best))
            i += len(best["key"])
        out, offset = [], 0
        for start, stop, t in matches:
            if t["single_word"]:
                if start > 0 and is_word_char(s[start - 1]):
                    continue
                if stop < len(s) and is_word_char(s[stop]):
                    continue
            if t["lstrip"]:
                k = start
                while k > 0 and is_white_space(s[k - 1]):
                    k -= 1
                start = max(k, offset)
            if t["rstrip"]:
                while stop < len(s) and is_white_space(s[stop]):
                    stop += 1
            if offset < start:
                out.append((offset, start, None))
            out.append((start, stop, t))
            offset = stop
        if offset < len(s) or not s:
            out.append((offset, len(s), None))
        return out

    # -- normalizers
    def normalize(self, s, spec="top"):
        if spec == "top":
            spec = self.j["normalizer"]
        if spec is None:
            return s
        kind = spec["type"]
        if kind == "Sequence":
            for sub in spec["normalizers"]:
                s = self.normalize(s, sub)
            return s
        if kind == "Prepend":
            return spec["prepend"] + s if s else s
        if kind == "Replace":
            return s.replace(spec["pattern"]["String"], spec["content"])
        if kind in ("NFC", "NFD", "NFKC", "NFKD"):
            return unicodedata.normalize(kind, s)
        raise ValueError(kind)

    # -- pre-tokenizers: lists of (text, starts_at_offset_0)
    def pre_tokenize(self, pieces, spec="top"):
        if spec == "top":
            spec = self.j["pre_tokenizer"]
        if spec is None:
            return pieces
        kind = spec["type"]
        out = []
        if kind == "Sequence":
            for sub in spec["pretokenizers"]:
                pieces = self.pre_tokenize(pieces, sub)
            return pieces
        for s, first in pieces:
            if kind == "ByteLevel":
                if spec.get("add_prefix_space", True) and not s.startswith(" "):
                    s = " " + s
                parts = regex_split(GPT2_RE, s) if spec.get("use_regex", True) else [s]
                for k, p in enumerate(parts):
                    out.append(("".join(B2C[b] for b in p.encode("utf-8")), first and k == 0))
            elif kind == "Split":
                assert spec["behavior"] == "Isolated" and not spec["invert"]
                for k, p in enumerate(regex_split(spec["pattern"]["Regex"], s)):
                    out.append((p, first and k == 0))
            elif kind == "Metaspace":
                rep = spec["replacement"]
                s = s.replace(" ", rep)
                scheme = spec.get("prepend_scheme", "always")
                if not s.startswith(rep) and (scheme == "always" or (scheme == "first" and first)):
                    s = rep + s
                if not spec.get("split", True):
                    out.append((s, first))
                    continue
                local, cur = [], ""
                for c in s:
                    if c == rep and cur:
                        local.append(cur)
                        cur = ""
                    cur += c
                if cur:
                    local.append(cur)
                for k, p in enumerate(local):
                    out.append((p, first and k == 0))
            else:
                raise ValueError(kind)
        return [p for p in out if p[0]]

    # -- model
    def bpe(self, word):
        m = self.j["model"]
        if m.get("ignore_merges") and word in self.vocab:
            return [self.vocab[word]]
        syms, unk = [], None  # unk: pending unknown token (fused)
        for c in word:
            if c in self.vocab:
                if unk is not None:
                    syms.append(unk)
                    unk = None
                syms.append(c)
                continue
            if m["byte_fallback"]:
                byte_toks = ["<0x%02X>" % b for b in c.encode("utf-8")]
                if all(t in self.vocab for t in byte_toks):
                    syms.extend(byte_toks)
                    continue
            if m["unk_token"] is not None:
                if unk is not None and not m["fuse_unk"]:
                    syms.append(unk)
                unk = m["unk_token"]
        if unk is not None:
            syms.append(unk)
        while True:
            best = None
            for k in range(len(syms) - 1):
                r = self.ranks.get((syms[k], syms[k + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, k)
            if best is None:
                break
            k = best[1]
            syms[k:k + 2] = [syms[k] + syms[k + 1]]
        return [self.vocab[s] for s in syms]

    # -- post-processing
    def special_parts(self, spec):
        """(ids before, ids after) that the post-processor adds to a single sequence."""
        if spec is None:
            return [], []
        kind = spec["type"]
        if kind == "ByteLevel":
            return [], []
        if kind in ("RobertaProcessing", "BertProcessing"):
            return [spec["cls"][1]], [spec["sep"][1]]
        if kind == "TemplateProcessing":
            before, after, seen = [], [], False
            for item in spec["single"]:
                if "Sequence" in item:
                    seen = True
                else:
                    ids = spec["special_tokens"][item["SpecialToken"]["id"]]["ids"]
                    (after if seen else before).extend(ids)
            return before, after
        if kind == "Sequence":
            before, after = [], []
            for sub in spec["processors"]:
                b, a = self.special_parts(sub)
                before, after = b + before, after + a
            return before, after
        raise ValueError(kind)

    def encode(self, text, add_special):
        ids = []
        for start, end, tok in self.find_matches(text, [t for t in self.added if not t["normalized"]]):
            if tok is not None:
                ids.append(tok["id"])
                continue
            normalized = self.normalize(text[start:end])
            for s2, e2, tok2 in self.find_matches(normalized, [t for t in self.added if t["normalized"]]):
                if tok2 is not None:
                    ids.append(tok2["id"])
                    continue
                if s2 == e2:
                    continue
                for w, _ in self.pre_tokenize([(normalized[s2:e2], start == 0 and s2 == 0)]):
                    ids.extend(self.bpe(w))
        before, after = self.special_parts(self.j["post_processor"])
        trunc = self.j["truncation"]
        if trunc:
            limit = trunc["max_length"] - (len(before) + len(after) if add_special else 0)
            limit = max(limit, 0)
            if len(ids) > limit:
                ids = ids[len(ids) - limit:] if trunc["direction"] == "Left" else ids[:limit]
        if add_special:
            ids = before + ids + after
        return ids

    # -- decoding
    def decode(self, ids, skip_special):
        # Special tokens are skipped by their text, as the reference does.
        tokens = [self.id_to_token[i] for i in ids]
        tokens = [t for t in tokens if not (skip_special and t in self.special_texts)]
        spec = self.j["decoder"]
        if spec is None:
            return " ".join(tokens)
        return "".join(self.decode_chain(tokens, spec))

    def decode_chain(self, tokens, spec):
        kind = spec["type"]
        if kind == "Sequence":
            for sub in spec["decoders"]:
                tokens = self.decode_chain(tokens, sub)
            return tokens
        if kind == "ByteLevel":
            data = b""
            for t in tokens:
                if all(c in C2B for c in t):
                    data += bytes(C2B[c] for c in t)
                else:
                    data += t.encode("utf-8")
            return [data.decode("utf-8", errors="replace")]
        if kind == "Replace":
            return [t.replace(spec["pattern"]["String"], spec["content"]) for t in tokens]
        if kind == "ByteFallback":
            out, run = [], []
            def flush():
                if run:
                    try:
                        out.append(bytes(run).decode("utf-8"))
                    except UnicodeDecodeError:
                        out.extend(["\ufffd"] * len(run))
                    run.clear()
            for t in tokens:
                if re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", t):
                    run.append(int(t[3:5], 16))
                else:
                    flush()
                    out.append(t)
            flush()
            return out
        if kind == "Fuse":
            return ["".join(tokens)]
        if kind == "Strip":
            out = []
            for t in tokens:
                lo, hi = 0, len(t)
                while lo < spec["start"] and lo < hi and t[lo] == spec["content"]:
                    lo += 1
                k = 0
                while k < spec["stop"] and hi > lo and t[hi - 1] == spec["content"]:
                    hi -= 1
                    k += 1
                out.append(t[lo:hi])
            return out
        if kind == "Metaspace":
            rep = spec["replacement"]
            never = spec.get("prepend_scheme") == "never"
            return [t.replace(rep, "" if (k == 0 and not never) else " ") for k, t in enumerate(tokens)]
        raise ValueError(kind)


# ---------------------------------------------------------------- test texts

TEXTS = [
    "", "Hello world", "Hello, world! How are you?", "hello   world", "a   b", "a  ",
    "trailing space ", "  two leading", " leading", "\n\n  x", "line1\nline2\r\nline3\n",
    "tab\tseparated\tvalues", "   ", "\n", "x\r\n\r\n y",
    "I'm can't WE'LL they're you've she'd it's 'sup DON'T", "'s's", "ſ 'ſ", "it'ſ IT'S We'Ve",
    "12345 678 9", "pi is 3.14159", "year2024 and 1000000", "$100 or ½ or Ⅻ or ١٢٣٤",
    "日本語のテキスト", "中文测试，标点。", "emoji 😀🎉 ok", "👍🏽 family 👨‍👩‍👧", "naïve café",
    "e\u0301 combining", "Ωmega ǅ", "ideographic\u3000space", "nbsp\u00a0here",
    "नमस्ते दुनिया", "สวัสดีครับ",
    "<|endoftext|>", "Hello<|endoftext|>world", "<s>Hello</s>", "a <mask> b", "a<mask>b",
    "a <custom> b", "<custom>x", "a<custom>",
    "<|user|>\nHi there<|end|>\n<|assistant|>\nHello!<|end|>\n",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<|im_start|>user\nHi<|im_end|>\n", "a zz b", "buzzword zz", "zz", "_zz_",
    " zyxq", "zyxq", "def f(x):\n    return x**2  # sq\n", "!!!???", "The quick brown fox jumps over the lazy dog.",
    "Training the model needs a tokenizer that is exact.",
]

SPLIT_EXTRA = [
    " \t\n x", "  123", "1234567", "Hello\u3000World", "'S 'ſ 'LL 'Ll 'lL", "foo'sbar", "!!!abc",
    "...\n\nx", "\t\tfoo", "a\u00a0b", "x²", "😀😀 😀", " \u2028x", "\u0085x", "a \n b", " !\n\n",
    "\r\n", "  \n  ", "x  \n", "a1b2c3", " 1 22 333 4444", "don't", "O'Neil's", "''s",
]

POOL = [" ", " ", " ", "\n", "\r", "\t", "a", "b", "B", "s", "T", "L", "l", "1", "2", "3", "'", "!", ".",
        "é", "e\u0301", "日", "本", "😀", "\u3000", "\u00a0", "\u0301", "٣", "ſ", "<s>", "<|endoftext|>", "zz"]


def random_texts(n, seed):
    rnd = random.Random(seed)
    return ["".join(rnd.choice(POOL) for _ in range(rnd.randint(0, 24))) for _ in range(n)]


def main():
    golden = {"splits": {}, "families": {}}
    split_texts = [t for t in TEXTS if t] + SPLIT_EXTRA + random_texts(150, 1)
    patterns = {
        "gpt2": GPT2_RE,
        "llama3": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    }
    for name, pat in patterns.items():
        golden["splits"][name] = {"regex": pat, "cases": [{"text": t, "pieces": regex_split(pat, t)} for t in split_texts]}

    texts = TEXTS + random_texts(60, 2)
    for fam in FAMILIES:
        ref = Reference(os.path.join(HERE, fam, "tokenizer.json"))
        cases = []
        for t in texts:
            ids = ref.encode(t, False)
            ids_special = ref.encode(t, True)
            cases.append({"text": t, "ids": ids, "ids_special": ids_special,
                          "decoded": ref.decode(ids_special, False),
                          "decoded_skip": ref.decode(ids_special, True)})
        prefixes = []
        for t in ["emoji 😀🎉 ok", "日本語のテキスト", "👍🏽 family 👨‍👩‍👧"]:
            ids = ref.encode(t, False)
            for k in range(1, len(ids) + 1):
                prefixes.append({"ids": ids[:k], "text": ref.decode(ids[:k], False)})
        golden["families"][fam] = {"cases": cases, "prefix_decodes": prefixes}

    with open(os.path.join(HERE, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print("wrote", os.path.join(HERE, "golden.json"))


if __name__ == "__main__":
    main()
