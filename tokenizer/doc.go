// Package tokenizer loads Hugging Face tokenizer.json files and encodes text to token ids
// and back, in pure Go, with the results of the Hugging Face tokenizers library (0.23).
//
// Supported (anything else is refused at Load with an error naming the file and the
// component):
//
//   - models: BPE (byte-level as in GPT-2, Llama 3, Qwen, DeepSeek V3, cl100k/o200k-style
//     files; SentencePiece-style with byte_fallback, unk_token and fuse_unk as in Llama 2,
//     Mistral, Gemma; ignore_merges; continuing_subword_prefix and end_of_word_suffix),
//     WordPiece (BERT), WordLevel and Unigram (T5, ALBERT, XLNet style: Viterbi over the
//     piece scores, unknown characters fused, byte_fallback).
//   - normalizers: NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Strip, Prepend, Nmt,
//     ByteLevel, Replace (String or Regex), BertNormalizer (clean_text,
//     handle_chinese_chars, strip_accents, lowercase), Precompiled (the SentencePiece
//     character map of T5, ALBERT and XLM-R files, applied per grapheme cluster as the
//     reference does) and Sequence.
//   - pre-tokenizers: Split with any regex or String pattern, every behaviour (Removed,
//     Isolated, MergedWithPrevious, MergedWithNext, Contiguous) and invert; ByteLevel
//     (add_prefix_space, use_regex), Metaspace (replacement, prepend_scheme
//     first/always/never, split), Digits, Punctuation, Whitespace, WhitespaceSplit,
//     BertPreTokenizer, CharDelimiterSplit and Sequence.
//   - added_tokens with special, lstrip, rstrip, single_word and normalized; the
//     TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel and Sequence
//     post-processors; truncation to a maximum length (right or left).
//   - decoders: ByteLevel, Metaspace, WordPiece, BPEDecoder, ByteFallback, Fuse, Strip,
//     Replace (String or Regex) and Sequence.
//
// Not supported: the UnicodeScripts and FixedLength pre-tokenizers, the CTC decoder, BPE
// dropout, and a few regex constructs (below). The "padding" of tokenizer.json is ignored:
// Encode returns one unpadded sequence and the data pipeline pads batches itself.
//
// Split regexes. The reference compiles them with Oniguruma. The GPT-2, Llama 3 and Qwen2
// regexes, recognised by their exact text, run on hand-written scanners (pattern.go) that
// reproduce a backtracking engine's leftmost-first result: \s is the White_Space property,
// \p{L} and \p{N} the L and N general categories, contractions fold case by Unicode simple
// folding. Every other regex runs on github.com/dlclark/regexp2 after translateOnig
// (regex.go) rewrites what the two dialects read differently: Oniguruma's \w and \b, \h,
// case-insensitive groups (by simple case-folding orbits), and ^ and $, which match at
// line breaks. Possessive quantifiers, nested classes and class intersections are refused;
// multi-character case folds (ß and ss) are not reproduced. The fallback splits 4 to 9 times
// slower than the scanners (BENCHMARKS.md).
//
// Semantics follow the reference, including its quirks: the legacy Llama 2 normalizer
// prepends "▁" to every piece between added tokens; the Metaspace decoder drops the "▁"s
// of the first token; a character with neither a vocabulary entry, byte tokens nor an
// unknown token is dropped by BPE; a normalized added token decodes to its normalized
// form, and Decode skips special tokens by their text; BertNormalizer's clean_text drops
// Cc, Cf and Co characters but keeps unassigned ones. Byte-level decoding replaces invalid
// UTF-8 per maximal subpart with U+FFFD, as Rust's from_utf8_lossy does. Encode rejects
// invalid UTF-8 (ErrInvalidUTF8) rather than guess.
//
// Load also reads tokenizer_config.json from the same directory when present: bos_token,
// eos_token and pad_token (strings or AddedToken objects) give BOS, EOS and PAD, and the
// chat_template text is kept for ChatTemplate. Templates are rendered in Go, not by a Jinja
// engine: TemplateByName("llama3" | "chatml" | "qwen2" | "llama2" | "phi3" | "alpaca"), and
// DetectTemplate guesses the name from a chat_template's markers.
//
// Tests compare against two independent references. testdata/hf holds tokenizer.json
// files of every component family, built with the pipelines of current models' files, and
// goldens written by the Hugging Face tokenizers library itself (its Node binding) through
// testdata/hf/make_goldens.js, which also records single pre-tokenizers, normalizers and
// decoders (components.json). testdata/golden.json is written by testdata/reference_bpe.py,
// a deliberately plain Python reimplementation of byte-level and SentencePiece BPE, on the
// files testdata/make_tokenizers.py generates. Regenerate with
//
//	cd tokenizer && python3 testdata/make_tokenizers.py && python3 testdata/reference_bpe.py
//	npm install --prefix /tmp/hfref tokenizers@0.23.2
//	cd testdata/hf && NODE_PATH=/tmp/hfref/node_modules node make_goldens.js
package tokenizer
