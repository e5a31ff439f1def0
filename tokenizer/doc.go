// Package tokenizer loads Hugging Face tokenizer.json files for the models lrtrain
// fine-tunes and encodes text to token ids and back, in pure Go.
//
// Supported (anything else is refused at Load with an error naming the file and the
// component):
//
//   - Byte-level BPE as in GPT-2, RoBERTa, Llama 3 and Qwen2: the ByteLevel pre-tokenizer
//     and decoder, Split pre-tokenizers with the GPT-2, Llama 3 or Qwen2 regex, the NFC/NFKC
//     normalizers, and ignore_merges (Llama 3: a word that is itself in the vocabulary is one
//     token).
//   - SentencePiece-style BPE as in Llama 2, Mistral and Phi-3: the Prepend and Replace
//     normalizers or the Metaspace pre-tokenizer (prepend schemes always/first/never, split),
//     byte_fallback to <0xNN> tokens, unk_token with fuse_unk, and the Replace, ByteFallback,
//     Fuse, Strip and Metaspace decoders.
//   - added_tokens with special, lstrip, rstrip, single_word and normalized, matched
//     leftmost-longest in the text before normalization (normalized ones after it);
//     TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel and Sequence
//     post-processors; truncation to a maximum length (right or left).
//
// Not supported: WordPiece, Unigram and WordLevel models, BPE dropout, regex Replace
// patterns, and other pre-tokenizer regexes (the DeepSeek or o200k ones, for instance).
//
// The pre-tokenizer regexes use lookahead (\s+(?!\S)), scoped case folding
// ((?i:'s|'t|...)) and Unicode classes, which Go's regexp lacks, so each known regex is
// implemented by a small scanner (pattern.go) that reproduces a backtracking engine's
// leftmost-first result: \s is the White_Space property, \p{L} and \p{N} the L and N
// general categories, contractions fold case by Unicode simple folding. Load recognises a
// regex by its exact text.
//
// Semantics follow the reference Rust implementation, including its quirks: the legacy
// Llama 2 normalizer prepends "▁" to every piece between added tokens; the Metaspace
// decoder drops the "▁"s of the first token, so a leading space of the text is lost; a
// character with neither a vocabulary entry, byte tokens nor an unknown token is dropped.
// Byte-level decoding replaces invalid UTF-8 per maximal subpart with U+FFFD, as Rust's
// from_utf8_lossy does. Encode rejects invalid UTF-8 (ErrInvalidUTF8) rather than guess.
//
// Load also reads tokenizer_config.json from the same directory when present: bos_token,
// eos_token and pad_token (strings or AddedToken objects) give BOS, EOS and PAD, and the
// chat_template text is kept for ChatTemplate. Templates are rendered in Go, not by a Jinja
// engine: TemplateByName("llama3" | "chatml" | "qwen2" | "llama2" | "phi3" | "alpaca"), and
// DetectTemplate guesses the name from a chat_template's markers.
//
// Tests compare against testdata/golden.json, written by testdata/reference_bpe.py, a
// separate, deliberately plain Python reference (Python's re engine with the Unicode
// classes spelled out from unicodedata, and a rescan-the-word BPE) run on the small
// tokenizer.json files that testdata/make_tokenizers.py generates. Regenerate with
//
//	cd tokenizer && python3 testdata/make_tokenizers.py && python3 testdata/reference_bpe.py
package tokenizer
