// Small vocabularies learned from a corpus, so that the generated tokenizer.json files
// are ours: a greedy BPE learner, a WordPiece vocabulary of frequent words and suffixes,
// and unigram pieces scored by log frequency. The reference library only loads and runs
// the results; nothing here needs to match how it trains.
'use strict';

// learnBPE merges the most frequent adjacent pair (ties: the smaller pair in code-unit
// order) until n merges are made or no pair occurs twice. words: Map from a word (an array
// of initial symbols, joined by \u0001) to its count.
function learnBPE(words, n) {
  const entries = [...words].map(([w, c]) => ({ syms: w.split('\u0001'), c }));
  const merges = [];
  for (let m = 0; m < n; m++) {
    const counts = new Map();
    for (const { syms, c } of entries) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const key = syms[i] + '\u0001' + syms[i + 1];
        counts.set(key, (counts.get(key) || 0) + c);
      }
    }
    let best = null;
    let bestCount = 1;
    for (const [k, c] of counts) {
      if (c > bestCount || (c === bestCount && best !== null && k < best)) {
        best = k;
        bestCount = c;
      }
    }
    if (best === null) break;
    const [a, b] = best.split('\u0001');
    merges.push([a, b]);
    for (const e of entries) {
      const out = [];
      for (let i = 0; i < e.syms.length; i++) {
        if (i + 1 < e.syms.length && e.syms[i] === a && e.syms[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(e.syms[i]);
      }
      e.syms = out;
    }
  }
  return merges;
}

// bpeVocab numbers the given leading tokens, then the alphabet, then every merge result.
function bpeVocab(lead, alphabet, merges) {
  const vocab = {};
  let id = 0;
  const add = (t) => {
    if (!(t in vocab)) vocab[t] = id++;
  };
  lead.forEach(add);
  alphabet.forEach(add);
  merges.forEach(([a, b]) => add(a + b));
  return vocab;
}

// countWords counts pre-tokenized words, each split into symbols by split.
function countWords(pieces, split = (w) => Array.from(w)) {
  const words = new Map();
  for (const p of pieces) {
    if (!p) continue;
    const key = split(p).join('\u0001');
    words.set(key, (words.get(key) || 0) + 1);
  }
  return words;
}

// wordPieceVocab: the special tokens, every character seen at least minChar times (alone
// and with the ## prefix), words seen twice or more, and ## suffixes of 2-4 characters of
// longer words seen twice or more.
function wordPieceVocab(specials, words, minChar = 2) {
  const chars = new Map();
  const wc = new Map();
  const suffixes = new Map();
  for (const w of words) {
    wc.set(w, (wc.get(w) || 0) + 1);
    for (const ch of Array.from(w)) chars.set(ch, (chars.get(ch) || 0) + 1);
    const cs = Array.from(w);
    for (let k = 2; k <= 4 && k < cs.length; k++) {
      const s = '##' + cs.slice(cs.length - k).join('');
      suffixes.set(s, (suffixes.get(s) || 0) + 1);
    }
  }
  const tokens = [...specials];
  const sorted = (m, min) => [...m].filter(([, c]) => c >= min).map(([t]) => t).sort();
  for (const ch of sorted(chars, minChar)) tokens.push(ch, '##' + ch);
  for (const w of sorted(wc, 2)) if (Array.from(w).length > 1) tokens.push(w);
  for (const s of sorted(suffixes, 2)) tokens.push(s);
  const vocab = {};
  for (const t of tokens) if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  return vocab;
}

// unigramVocab: the given leading pieces with score 0, then every substring (up to 8
// characters) of the words seen at least minCount times, scored by its log relative
// frequency and rounded so that some scores tie, and every single character seen at least
// minChar times.
function unigramVocab(lead, words, minCount = 3, minChar = 2) {
  const counts = new Map();
  let total = 0;
  for (const w of words) {
    const cs = Array.from(w);
    for (let i = 0; i < cs.length; i++) {
      for (let k = 1; k <= 8 && i + k <= cs.length; k++) {
        const s = cs.slice(i, i + k).join('');
        counts.set(s, (counts.get(s) || 0) + 1);
        total++;
      }
    }
  }
  const pieces = lead.map((p) => [p, 0]);
  const seen = new Set(lead);
  const keys = [...counts.keys()].sort();
  for (const s of keys) {
    const c = counts.get(s);
    const single = Array.from(s).length === 1;
    if (seen.has(s) || c < (single ? minChar : minCount)) continue;
    seen.add(s);
    pieces.push([s, Math.round(Math.log(c / total) * 100) / 100]);
  }
  return pieces;
}

module.exports = { learnBPE, bpeVocab, countWords, wordPieceVocab, unigramVocab };
