// Writes the reference goldens of the tokenizer package with the Hugging Face tokenizers
// library itself (its official Node binding, npm package "tokenizers"):
//   - <name>/tokenizer.json: small tokenizers built from pipelines.js and vocabularies
//     learned by vocab.js, loaded and saved by the library;
//   - <name>/golden.json: for every test text, the library's ids without and with the
//     special tokens, the tokens, and the decoded text with and without special tokens;
//   - components.json: pre-tokenizer pieces, normalizer outputs and decoder outputs of
//     single components, every Split behaviour and invert included.
//
// Regenerate (node 18 or newer; the library is installed outside the repository):
//
//	npm install --prefix /tmp/hfref tokenizers@0.23.2
//	cd tokenizer/testdata/hf && NODE_PATH=/tmp/hfref/node_modules node make_goldens.js
'use strict';

const fs = require('fs');
const path = require('path');
const hf = require('tokenizers');
const { hard, fuzz } = require('./texts.js');
const V = require('./vocab.js');
const { pipelines } = require('./pipelines.js');
const components = require('./components.js');

const dummyModel = { type: 'WordLevel', vocab: { '[UNK]': 0 }, unk_token: '[UNK]' };

// load builds a Tokenizer from a tokenizer.json object with the library's own parser.
function load(obj) {
  return hf.Tokenizer.fromString(JSON.stringify({
    version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
    pre_tokenizer: null, post_processor: null, decoder: null, model: dummyModel, ...obj,
  }));
}

const corpusText = hard.concat(fuzz(150, 7), [
  'The tokenizer splits the text into words, then the model splits every word into tokens. '.repeat(3),
  'Training a tokenizer on this corpus gives a small vocabulary for the tests. '.repeat(3),
  'def tokenize(text):\n    return [t for t in text.split()]\n'.repeat(2),
  '日本語のテキストです。中文文本。한국어 텍스트. '.repeat(2),
]);

// words runs the pipeline's normalizer and pre-tokenizer of the library over the corpus.
function words(p) {
  const t = load({ normalizer: p.normalizer || null, pre_tokenizer: p.pre_tokenizer || null });
  const n = t.getNormalizer();
  const pre = t.getPreTokenizer();
  const out = [];
  for (const s of corpusText) {
    const norm = n ? n.normalizeString(s) : s;
    if (!pre) out.push(norm);
    else for (const [w] of pre.preTokenizeString(norm)) out.push(w);
  }
  return out;
}

const byteTokens = Array.from({ length: 256 }, (_, b) => '<0x' + b.toString(16).toUpperCase().padStart(2, '0') + '>');

// model learns the vocabulary of a pipeline and returns the tokenizer.json "model".
function model(p) {
  const ws = words(p);
  switch (p.kind) {
    case 'bytelevel': {
      const alphabet = hf.byteLevelAlphabet().sort();
      const merges = V.learnBPE(V.countWords(ws), p.merges);
      return { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab: V.bpeVocab([], alphabet, merges), merges };
    }
    case 'sp': {
      const counts = new Map();
      for (const w of ws) for (const ch of Array.from(w)) counts.set(ch, (counts.get(ch) || 0) + 1);
      const alphabet = [...counts].filter(([, c]) => c >= 3).map(([ch]) => ch).sort();
      const keep = new Set(alphabet);
      const merges = V.learnBPE(V.countWords(ws, (w) => Array.from(w).map((c) => (keep.has(c) ? c : '\u0002'))), p.merges)
        .filter(([a, b]) => !a.includes('\u0002') && !b.includes('\u0002'));
      return { type: 'BPE', dropout: null, continuing_subword_prefix: null, end_of_word_suffix: null, ignore_merges: false,
        ...p.model, vocab: V.bpeVocab(p.specials.concat(byteTokens), alphabet, merges), merges };
    }
    case 'wordpiece':
      return { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##',
        max_input_chars_per_word: p.maxChars || 100, vocab: V.wordPieceVocab(p.specials, ws) };
    case 'unigram':
      return { type: 'Unigram', unk_id: p.unkId, byte_fallback: !!p.byteFallback,
        vocab: V.unigramVocab(p.lead.concat(p.byteFallback ? byteTokens : []), ws) };
    case 'wordlevel':
      return { type: 'WordLevel', unk_token: '<unk>', vocab: V.wordPieceVocab(p.specials, ws, 3) };
  }
  throw new Error('unknown kind ' + p.kind);
}

// buildPipeline writes <name>/tokenizer.json and returns the loaded tokenizer.
function buildPipeline(name, p) {
  const m = model(p);
  let next = 0;
  const vocabIds = Array.isArray(m.vocab) ? m.vocab.map((_, i) => i) : Object.values(m.vocab);
  for (const id of vocabIds) next = Math.max(next, id + 1);
  const addedTokens = p.added ? p.added(next) : [];
  const ids = {};
  if (Array.isArray(m.vocab)) m.vocab.forEach(([t], i) => { ids[t] = i; });
  else Object.assign(ids, m.vocab);
  for (const a of addedTokens) ids[a.content] = a.id;
  if (p.specials) {
    for (const s of p.specials) addedTokens.push({ id: ids[s], content: s, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  }
  if (p.lead) {
    for (const s of p.lead) addedTokens.push({ id: ids[s], content: s, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  }
  addedTokens.sort((a, b) => a.id - b.id);
  const t = load({
    truncation: p.truncation || null, added_tokens: addedTokens, normalizer: p.normalizer || null,
    pre_tokenizer: p.pre_tokenizer || null, post_processor: p.post ? p.post(ids) : null,
    decoder: p.decoder || null, model: m,
  });
  const dir = path.join(__dirname, name);
  fs.mkdirSync(dir, { recursive: true });
  t.save(path.join(dir, 'tokenizer.json'), false);
  return [hf.Tokenizer.fromFile(path.join(dir, 'tokenizer.json')), addedTokens.map((a) => a.content)];
}

// goldenTexts are the hard cases, the corpus lines that hold added tokens, and random
// strings with the pipeline's added tokens mixed in.
function goldenTexts(addedContents) {
  const extra = addedContents.concat(addedContents.map((a) => ' ' + a + '  '), addedContents.map((a) => a.toUpperCase()));
  const mixed = addedContents.map((a, i) => `x ${a}y  ${a} word words ${a.toLowerCase()}\t${a}${hard[i % hard.length]}`);
  return hard.concat(mixed, fuzz(120, 11, extra));
}

async function encodeAll(t, addedContents) {
  const texts = goldenTexts(addedContents);
  const cases = [];
  for (const text of texts) {
    const plain = await t.encode(text, null, { addSpecialTokens: false });
    const special = await t.encode(text, null, { addSpecialTokens: true });
    const ids = special.getIds();
    cases.push({
      text, ids: plain.getIds(), ids_special: ids, tokens: special.getTokens(),
      decoded: await t.decode(ids, false), decoded_skip: await t.decode(ids, true),
    });
  }
  return cases;
}

async function main() {
  const only = process.argv.slice(2);
  for (const [name, p] of Object.entries(pipelines)) {
    if (only.length && !only.includes(name)) continue;
    const [t, addedContents] = buildPipeline(name, p);
    const cases = await encodeAll(t, addedContents);
    const lines = cases.map((c) => JSON.stringify(c));
    fs.writeFileSync(path.join(__dirname, name, 'golden.json'), '{"cases": [\n' + lines.join(',\n') + '\n]}\n');
    console.log(`${name}: ${cases.length} cases`);
  }
  if (!only.length || only.includes('components')) {
    const out = components.run(load, hard.concat(fuzz(80, 23)));
    fs.writeFileSync(path.join(__dirname, 'components.json'), out);
    console.log('components.json written');
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
