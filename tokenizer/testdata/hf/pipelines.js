// The pipelines of the generated tokenizer.json files. The regexes and the component
// settings are those found in the tokenizer.json files of current models (named in each
// entry); the vocabularies are learned here (vocab.js), so the files are small and ours.
'use strict';

const { charsmap } = require('./charsmap.js');

const GPT2_RE = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;
const LLAMA3_RE = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const QWEN2_RE = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
// o200k-style (GPT-4o): case-aware letter runs with optional contractions, "/" after
// punctuation.
const O200K_RE = String.raw`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
// DeepSeek V3: digits in threes, CJK runs, then a GPT-style split (its character class
// holds a literal CR and LF, as in the original file).
const DS_DIGITS_RE = String.raw`\p{N}{1,3}`;
const DS_CJK_RE = '[一-龥぀-ゟ゠-ヿ]+';
const DS_MAIN_RE = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";

const split = (re, behavior = 'Isolated', invert = false) => ({ type: 'Split', pattern: { Regex: re }, behavior, invert });
const splitStr = (s, behavior = 'Isolated', invert = false) => ({ type: 'Split', pattern: { String: s }, behavior, invert });
const byteLevel = (addPrefixSpace = false, useRegex = false) => ({ type: 'ByteLevel', add_prefix_space: addPrefixSpace, trim_offsets: true, use_regex: useRegex });
const metaspace = (scheme, split = true, replacement = '▁') => ({ type: 'Metaspace', replacement, prepend_scheme: scheme, split });
const added = (id, content, o = {}) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true, ...o });
const template = (single, specials) => ({
  type: 'TemplateProcessing',
  single: single.map((x) => (x === '$A' ? { Sequence: { id: 'A', type_id: 0 } } : { SpecialToken: { id: x, type_id: 0 } })),
  pair: single.map((x) => (x === '$A' ? { Sequence: { id: 'A', type_id: 0 } } : { SpecialToken: { id: x, type_id: 0 } })).concat(
    [{ Sequence: { id: 'B', type_id: 1 } }]),
  special_tokens: specials,
});
const byteFallbackDecoder = [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }];

// kind selects how vocab learning sees the words: bytelevel (GPT-2 alphabet), sp (one
// symbol per character with <0xNN> fallback tokens), wordpiece, unigram, wordlevel.
const pipelines = {
  'bert-uncased': {
    kind: 'wordpiece', specials: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'],
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post: (v) => template(['[CLS]', '$A', '[SEP]'], { '[CLS]': { id: '[CLS]', ids: [v['[CLS]']], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [v['[SEP]']], tokens: ['[SEP]'] } }),
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    truncation: { direction: 'Right', max_length: 32, strategy: 'LongestFirst', stride: 0 },
  },
  'bert-cased': {
    kind: 'wordpiece', specials: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'],
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: false },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post: (v) => ({ type: 'BertProcessing', sep: ['[SEP]', v['[SEP]']], cls: ['[CLS]', v['[CLS]']] }),
    decoder: { type: 'WordPiece', prefix: '##', cleanup: false },
    maxChars: 40,
  },
  roberta: {
    kind: 'bytelevel', merges: 300,
    pre_tokenizer: byteLevel(true, true),
    added: (n) => [added(n, '<s>'), added(n + 1, '</s>'), added(n + 2, '<mask>', { lstrip: true })],
    post: (v) => ({ type: 'RobertaProcessing', sep: ['</s>', v['</s>']], cls: ['<s>', v['<s>']], trim_offsets: true, add_prefix_space: true }),
    decoder: byteLevel(true, true),
  },
  cl100k: {
    kind: 'bytelevel', merges: 300,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [split(LLAMA3_RE, 'Removed', true), byteLevel()] },
    added: (n) => [added(n, '<|endoftext|>'), added(n + 1, '<|fim_prefix|>')],
    decoder: byteLevel(true, true),
  },
  o200k: {
    kind: 'bytelevel', merges: 300,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [split(O200K_RE, 'Removed', true), byteLevel()] },
    added: (n) => [added(n, '<|endoftext|>'), added(n + 1, '<|endofprompt|>')],
    decoder: byteLevel(true, true),
  },
  deepseek3: {
    kind: 'bytelevel', merges: 300,
    normalizer: { type: 'Sequence', normalizers: [] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [split(DS_DIGITS_RE), split(DS_CJK_RE), split(DS_MAIN_RE), byteLevel()] },
    added: (n) => [added(n, '<｜begin▁of▁sentence｜>'), added(n + 1, '<｜end▁of▁sentence｜>')],
    post: () => byteLevel(true, true),
    decoder: byteLevel(true, true),
  },
  gemma3: {
    kind: 'sp', merges: 300, specials: ['<pad>', '<eos>', '<bos>', '<unk>'],
    normalizer: { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
    pre_tokenizer: splitStr(' ', 'MergedWithPrevious'),
    model: { unk_token: '<unk>', fuse_unk: true, byte_fallback: true },
    added: (n) => [added(n, '<start_of_turn>'), added(n + 1, '<end_of_turn>')],
    post: (v) => template(['<bos>', '$A'], { '<bos>': { id: '<bos>', ids: [v['<bos>']], tokens: ['<bos>'] } }),
    decoder: { type: 'Sequence', decoders: byteFallbackDecoder },
  },
  'mistral-metaspace': {
    kind: 'sp', merges: 300, specials: ['<unk>', '<s>', '</s>'],
    pre_tokenizer: metaspace('first', false),
    model: { unk_token: '<unk>', fuse_unk: true, byte_fallback: true },
    added: (n) => [added(n, '[INST]'), added(n + 1, '[/INST]')],
    post: (v) => template(['<s>', '$A'], { '<s>': { id: '<s>', ids: [v['<s>']], tokens: ['<s>'] } }),
    decoder: metaspace('first', false),
  },
  // T5: a SentencePiece character map, then runs of spaces squeezed.
  't5-unigram': {
    kind: 'unigram', lead: ['<pad>', '</s>', '<unk>'], unkId: 2,
    normalizer: { type: 'Sequence', normalizers: [
      { type: 'Precompiled', precompiled_charsmap: charsmap() }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' }, metaspace('always', true)] },
    post: (v) => template(['$A', '</s>'], { '</s>': { id: '</s>', ids: [v['</s>']], tokens: ['</s>'] } }),
    decoder: metaspace('always', true),
    truncation: { direction: 'Left', max_length: 24, strategy: 'LongestFirst', stride: 0 },
  },
  // ALBERT: quote rewrites, NFKD, accents stripped, lower case, then a character map.
  'albert-unigram': {
    kind: 'unigram', lead: ['<pad>', '<unk>', '[CLS]', '[SEP]', '[MASK]'], unkId: 1,
    normalizer: { type: 'Sequence', normalizers: [
      { type: 'Replace', pattern: { String: '``' }, content: '"' }, { type: 'Replace', pattern: { String: "''" }, content: '"' },
      { type: 'NFKD' }, { type: 'StripAccents' }, { type: 'Lowercase' }, { type: 'Precompiled', precompiled_charsmap: charsmap() }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' }, metaspace('always', true)] },
    post: (v) => template(['[CLS]', '$A', '[SEP]'], { '[CLS]': { id: '[CLS]', ids: [v['[CLS]']], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [v['[SEP]']], tokens: ['[SEP]'] } }),
    decoder: metaspace('always', true),
  },
  'unigram-bytes': {
    kind: 'unigram', lead: ['<unk>', '<s>', '</s>'], unkId: 0, byteFallback: true,
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Lowercase' }] },
    pre_tokenizer: metaspace('first', false),
    decoder: { type: 'Sequence', decoders: byteFallbackDecoder.concat([{ type: 'Strip', content: ' ', start: 1, stop: 0 }]) },
  },
  added: {
    kind: 'bytelevel', merges: 200,
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: byteLevel(false, true),
    added: (n) => [
      added(n, '<|special|>'), added(n + 1, '[MASK]', { lstrip: true }), added(n + 2, '<R>', { rstrip: true }),
      added(n + 3, '<LR>', { lstrip: true, rstrip: true }), added(n + 4, 'word', { single_word: true, special: false }),
      added(n + 5, 'Hello World', { normalized: true, special: false }), added(n + 6, 'ÉTÉ', { normalized: true, special: false, single_word: true }),
      added(n + 7, '<eos>'), added(n + 8, '<eos> extra', { special: false })],
    post: (v) => template(['$A', '<eos>'], { '<eos>': { id: '<eos>', ids: [v['<eos>']], tokens: ['<eos>'] } }),
    decoder: byteLevel(true, true),
  },
  'wordlevel-digits': {
    kind: 'wordlevel', specials: ['<unk>'],
    normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' }, { type: 'Digits', individual_digits: true }, { type: 'Punctuation', behavior: 'Isolated' }] },
  },
};

module.exports = { pipelines, split, splitStr, byteLevel, metaspace, GPT2_RE, LLAMA3_RE, QWEN2_RE, O200K_RE, DS_DIGITS_RE, DS_CJK_RE, DS_MAIN_RE };
