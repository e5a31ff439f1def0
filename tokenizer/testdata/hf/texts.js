// Test strings for the reference goldens: hand-picked hard cases, then seeded random
// strings drawn from pools of characters that exercise the regex classes, the BERT
// normalizer, the added tokens and the models' unknown paths.
'use strict';

const hard = [
  '', ' ', '  ', '\t', '\n', ' \n ', 'a', 'Hello world', 'Hello, world! How are you?',
  'hello   world', 'a   b', 'trailing space ', '  two leading', '\n\n  x', 'x\r\n\r\n y',
  'line1\nline2\r\nline3\n', 'tab\tseparated\tvalues', 'mixed \t\n whitespace \u00a0 nbsp\u3000ideographic',
  "I'm can't WE'LL they're you've she'd it's 'sup DON'T", "it'ſ IT'S We'Ve o'K o'\u212a",
  '12345 678 9 1234567890', '3.14159 and 2,718 and -42 and 1e10', 'v1.2.3-rc4', '١٢٣٤٥ ۱۲۳ ४२ 𝟙𝟚𝟛 ½ ² Ⅻ',
  'café résumé naïve Ångström', 'cafe\u0301 re\u0301sume\u0301 (combining accents)', 'Ǆemal ǅ ǆ ß ẞ İstanbul ΣΑΣ σας',
  '日本語のテキスト、漢字とかな。', '中文文本，还有标点！', '한국어 텍스트 입니다', 'ภาษาไทย ไม่มีช่องว่าง',
  'हिन्दी पाठ क्षत्रिय', 'مرحبا بالعالم 123', 'שלום עולם', 'Ελληνικά και русский текст',
  'emoji 😀😃 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ 🥰 🫠', 'math ∑∫√∞ ≠ ≤ ≥ → ⇒ ∀x∃y', 'symbols $100 €50 £3 ¥9 ©®™ §¶',
  'punctuation!!! ??? ... ,,, ;;; ::: --- ___ ((())) [[]] {{}} <<>>', '"quoted" \'single\' «guillemets» „low“ ‘curly’',
  'def f(x):\n    return x**2  # comment\n', 'if (a != b && c == d) { x += 1; }', '<html><body class="x">Hi</body></html>',
  'https://example.com/path?q=1&r=two#frag user@mail.org', 'snake_case camelCase PascalCase kebab-case SCREAMING_CASE',
  'ALLCAPS WORDS AND lowercase', 'McDonald\'s O\'Neil iPhone eBay LaTeX', 'don\'t won\'t shan\'t y\'all ma\'am',
  'control\u0000chars\u0001here\u000b\u000c\u007f\u0085end', 'zero\u200bwidth\u200cnon\u200djoiner\ufeffbom\u00adshy',
  'replacement \ufffd char and private \ue000 use', 'unassigned \u0378 and new \u{1FAE0}',
  '\u2581 literal lower one eighth block \u2581\u2581', '##hash ##prefix', '<s> </s> <unk> <pad> [CLS] [SEP] [MASK]',
  'unbelievable unbelievably believing believer believed', 'tokenization tokenizer tokenized tokenizes retokenize',
  'The quick brown fox jumps over the lazy dog.', 'THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG!',
  'supercalifragilisticexpialidocious' + 'x'.repeat(80), 'a'.repeat(120), '1'.repeat(40), ' '.repeat(17) + 'x',
  '\r\n\r\n\r\n', 'end with newline\n', 'end with spaces   ', '\u3000\u3000full width space',
  'Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３', 'ﬁ ﬂ ﬀ ligatures ㎏ ㍻ ① ⑽', 'Kelvin \u212a and Angstrom \u212b and ohm \u2126',
];

// Pools for random strings: each random string is built from runs drawn from them.
const pools = [
  'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', '0123456789', "''''''sStTdDmMlLrReEvV",
  '     \t\n\r\u00a0\u3000\u2028\u0085\u000b', '.,;:!?-_()[]{}<>/\\|@#$%^&*+=~`"',
  'éèêëàâäôöûüçñÅøßœæ', '\u0301\u0308\u0327\u0903\u093f\u20dd', '日本語中文漢字テキストかな한국어',
  'αβγδΣσςπ', 'абвгдЖЗИ', '٠١٢٣۴۵६७𝟙½²Ⅻ', '😀👍🏽❤️🥰🇫🇷\u200d', 'ſ\u212aİıﬁ\u00ad\u200b\ufeff\u0000\u0001',
];

// mulberry32: a small seeded PRNG, so the generated strings are the same on every run.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fuzz(n, seed, extra = []) {
  const r = rng(seed);
  const pick = (arr) => arr[Math.floor(r() * arr.length)];
  const out = [];
  for (let i = 0; i < n; i++) {
    let s = '';
    const runs = 1 + Math.floor(r() * 8);
    for (let k = 0; k < runs; k++) {
      if (extra.length && r() < 0.1) {
        s += pick(extra);
        continue;
      }
      const pool = Array.from(pick(pools));
      const len = 1 + Math.floor(r() * 6);
      for (let j = 0; j < len; j++) s += pick(pool);
    }
    out.push(s);
  }
  return out;
}

module.exports = { hard, fuzz, rng };
