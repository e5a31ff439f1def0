// A small SentencePiece precompiled_charsmap, built here, for the Precompiled normalizer:
// a darts-clone double array over the UTF-8 bytes of the keys, followed by the
// NUL-terminated replacement strings. The rules imitate what an NFKC-style SentencePiece
// normalizer does (compatibility forms, white space, controls removed) and include the
// cases that need care: a key that is a prefix of a longer one, a two-character key, a
// mapping to nothing, and a grapheme whose first character alone has a rule.
'use strict';

const rules = {
  'ﬁ': 'fi', 'ﬂ': 'fl', 'ﬀ': 'ff', '①': '1', '⑽': '(10)', '½': '1⁄2', '²': '2', 'Ⅻ': 'XII',
  'Ａ': 'A', 'Ｂ': 'B', 'Ｃ': 'C', 'Ｆ': 'F', 'ｕ': 'u', 'ｌ': 'l', 'ｗ': 'w', 'ｉ': 'i', 'ｄ': 'd', 'ｔ': 't', 'ｈ': 'h',
  '１': '1', '２': '2', '３': '3', '\u00a0': ' ', '\u3000': ' ', '\t': ' ', '\n': ' ', '\r': ' ', '\r\n': ' ',
  '\u200b': '', '\ufeff': '', '\u0001': '', '\u0000': '', '\u00ad': '', '…': '...', 'ǅ': 'Dž', 'Ǆ': 'DŽ',
  'e\u0301': 'é', 'K': 'K', 'Å': 'Å', '㎏': 'kg', '㍻': '平成', 'ẞ': 'SS', '™': 'TM',
  'x': 'x', 'x\u0301': 'X', '\u2581': '_',
};

function buildDoubleArray(entries) {
  // A byte trie: node = { children: Map(byte -> node), value: number | undefined }.
  const root = { children: new Map() };
  for (const [key, value] of entries) {
    let n = root;
    for (const b of Buffer.from(key, 'utf8')) {
      if (!n.children.has(b)) n.children.set(b, { children: new Map() });
      n = n.children.get(b);
    }
    n.value = value;
  }
  const units = [0];
  const used = new Set([0]);
  const bases = new Set();
  const set = (pos, unit) => {
    while (units.length <= pos) units.push(0);
    units[pos] = unit >>> 0;
    used.add(pos);
  };
  // place gives node (whose own unit sits at pos) a base where all its slots are free;
  // slot base^0 holds the node's value when it has one, base^b the child for byte b.
  const place = (node, pos, label) => {
    const labels = [...node.children.keys()];
    const slots = (node.value !== undefined ? [0] : []).concat(labels);
    let base = 1;
    while (bases.has(base) || slots.some((l) => used.has(base ^ l)) || (pos ^ base) >= 1 << 21) base++;
    bases.add(base);
    const hasLeaf = node.value !== undefined ? 1 << 8 : 0;
    set(pos, ((pos ^ base) << 10) | hasLeaf | label);
    if (node.value !== undefined) set(base, (node.value | 0x80000000) >>> 0);
    for (const l of labels) used.add(base ^ l); // reserve before descending
    for (const l of labels) place(node.children.get(l), base ^ l, l);
  };
  place(root, 0, 0);
  return units;
}

function charsmap() {
  let blob = Buffer.alloc(0);
  const entries = [];
  for (const [k, v] of Object.entries(rules)) {
    entries.push([k, blob.length]);
    blob = Buffer.concat([blob, Buffer.from(v, 'utf8'), Buffer.from([0])]);
  }
  const units = buildDoubleArray(entries);
  const head = Buffer.alloc(4 + 4 * units.length);
  head.writeUInt32LE(4 * units.length, 0);
  units.forEach((u, i) => head.writeUInt32LE(u, 4 + 4 * i));
  return Buffer.concat([head, blob]).toString('base64');
}

module.exports = { charsmap };
