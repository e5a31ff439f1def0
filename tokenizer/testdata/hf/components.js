// Single-component goldens: every pre-tokenizer, normalizer and decoder configuration
// below is loaded by the reference library from its tokenizer.json spelling, then run on
// the test texts (decoders on token lists).
'use strict';

const P = require('./pipelines.js');
const { charsmap } = require('./charsmap.js');

const behaviors = ['Isolated', 'Removed', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'];

function preTokenizers() {
  const out = [];
  // Every behaviour with and without invert, on a scanner pattern, a fallback regex (with
  // empty matches), a String pattern and a one-character String.
  for (const b of behaviors) {
    for (const inv of [false, true]) {
      out.push(P.split(P.LLAMA3_RE, b, inv), P.split(String.raw`\p{N}+|\s|x*`, b, inv),
        P.splitStr('ab', b, inv), P.splitStr(' ', b, inv));
    }
  }
  for (const re of [P.GPT2_RE, P.LLAMA3_RE, P.QWEN2_RE, P.O200K_RE, P.DS_DIGITS_RE, P.DS_CJK_RE, P.DS_MAIN_RE,
    String.raw`(?i:ab|ſt)+`, String.raw`\w+|[^\w\s]+`, String.raw`\d+\.?\d*`, String.raw`^\s+|\s+$`, String.raw`(?<=\p{Ll})(?=\p{Lu})`,
    String.raw`[\p{P}\p{S}]`, String.raw`\h+`, String.raw`\b\w`]) {
    out.push(P.split(re));
  }
  for (const b of behaviors) out.push({ type: 'Punctuation', behavior: b }, P.splitStr('', b));
  for (const scheme of ['first', 'always', 'never']) {
    for (const split of [true, false]) out.push(P.metaspace(scheme, split));
  }
  out.push(P.metaspace('always', true, '_'));
  for (const aps of [true, false]) {
    for (const useRegex of [true, false]) out.push(P.byteLevel(aps, useRegex));
  }
  out.push({ type: 'Digits', individual_digits: true }, { type: 'Digits', individual_digits: false },
    { type: 'Whitespace' }, { type: 'WhitespaceSplit' }, { type: 'BertPreTokenizer' },
    { type: 'CharDelimiterSplit', delimiter: '-' },
    { type: 'Sequence', pretokenizers: [P.split(P.DS_DIGITS_RE), P.split(P.DS_CJK_RE), P.split(P.DS_MAIN_RE), P.byteLevel()] },
    { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' }, P.metaspace('first', true)] });
  return out;
}

function normalizers() {
  const bert = (clean_text, handle_chinese_chars, strip_accents, lowercase) =>
    ({ type: 'BertNormalizer', clean_text, handle_chinese_chars, strip_accents, lowercase });
  return [
    bert(true, true, null, true), bert(true, true, null, false), bert(false, false, true, false),
    bert(true, false, false, true), bert(false, true, null, true), bert(true, true, true, false),
    { type: 'Lowercase' }, { type: 'StripAccents' }, { type: 'ByteLevel' },
    { type: 'Replace', pattern: { String: '' }, content: '+' }, { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'StripAccents' }] },
    { type: 'NFC' }, { type: 'NFD' }, { type: 'NFKC' }, { type: 'NFKD' }, { type: 'Nmt' },
    { type: 'Replace', pattern: { String: '  ' }, content: '_' }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' },
    { type: 'Replace', pattern: { Regex: String.raw`(?i)[aeiou]` }, content: '*' },
    { type: 'Precompiled', precompiled_charsmap: charsmap() }, { type: 'Prepend', prepend: '▁' }, { type: 'Strip', strip_left: true, strip_right: true },
    { type: 'Strip', strip_left: false, strip_right: true },
    { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
  ];
}

function decoders() {
  return [
    { type: 'WordPiece', prefix: '##', cleanup: true }, { type: 'WordPiece', prefix: '##', cleanup: false },
    { type: 'WordPiece', prefix: '@@', cleanup: true }, { type: 'BPEDecoder', suffix: '</w>' },
    { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: true },
    { type: 'Metaspace', replacement: '▁', prepend_scheme: 'never', split: true },
    { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }, { type: 'Strip', content: 'x', start: 2, stop: 0 },
    { type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'Replace', pattern: { Regex: '#+' }, content: '' },
    P.byteLevel(true, true),
    { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
  ];
}

const tokenLists = [
  [], ['hello'], ['hel', '##lo', 'world', '##s', '.', 'do', 'not', ',', "'", 's', '!', '?'],
  ['un', '##believ', '##able', "n't", 'it', "'", 's', 'I', "'m", 'they', "'re", 'we', "'ve", 'a', ' ', '##'],
  ['▁Hello', '▁', 'world', '▁▁x', '<0xE6>', '<0x97>', '<0xA5>', '<0xFF>', '▁', '<0x41>', 'end▁'],
  ['<0xE6>', '<0x97>'], ['▁', '▁▁', '▁a'], ['lo</w>', 'w', 'er</w>', 'new', 'est</w>'],
  ['ĠHello', 'Ġworld', 'Ċ', 'Ã©', 'ðŁĺ', 'Ģ', 'x'], [' lead', 'mid', 'trail '], ['##a', '##b', 'c'],
  ['@@x', 'y', '@@z'], ['#hash', '##', 'a#b'],
];

// run returns components.json: each entry is a configuration and its [input, output]
// cases.
function run(load, texts) {
  const entries = { pre_tokenizers: [], normalizers: [], decoders: [] };
  for (const cfg of preTokenizers()) {
    const pre = load({ pre_tokenizer: cfg }).getPreTokenizer();
    entries.pre_tokenizers.push({ config: cfg, cases: texts.map((s) => [s, pre.preTokenizeString(s).map(([w]) => w)]) });
  }
  for (const cfg of normalizers()) {
    const n = load({ normalizer: cfg }).getNormalizer();
    entries.normalizers.push({ config: cfg, cases: texts.map((s) => [s, n.normalizeString(s)]) });
  }
  for (const cfg of decoders()) {
    const d = load({ decoder: cfg }).getDecoder();
    entries.decoders.push({ config: cfg, cases: tokenLists.map((ts) => [ts, d.decode(ts)]) });
  }
  const section = (list) => list.map((e) => JSON.stringify(e)).join(',\n');
  return `{"pre_tokenizers": [\n${section(entries.pre_tokenizers)}\n],\n"normalizers": [\n${section(entries.normalizers)}\n],\n"decoders": [\n${section(entries.decoders)}\n]}\n`;
}

module.exports = { run };
