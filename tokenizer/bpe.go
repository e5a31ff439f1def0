package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// bpe is the BPE model of a tokenizer.json ("model": {"type": "BPE", ...}).
type bpe struct {
	vocab  mapVocab
	merges map[uint64]mergeRule // key: pairKey(left, right)

	unkToken     string // "" when the model has none
	unkID        int    // -1 when unkToken is empty or missing from the vocabulary
	fuseUnk      bool
	byteFallback bool
	byteIDs      [256]int // ids of "<0x00>".."<0xFF>"; -1 where missing
	ignoreMerges bool
	prefix       string // continuing_subword_prefix
	suffix       string // end_of_word_suffix

	mu    sync.RWMutex
	cache map[string][]int
}

func (m *bpe) tokenID(s string) (int, bool)       { return m.vocab.tokenID(s) }
func (m *bpe) forEach(f func(tok string, id int)) { m.vocab.forEach(f) }

type mergeRule struct {
	rank, id int
}

const (
	cacheMaxEntries = 1 << 16
	cacheMaxWordLen = 256
)

// tokenize appends the ids of one pre-tokenized word to out.
func (m *bpe) tokenize(word string, out []int) ([]int, error) {
	if word == "" {
		return out, nil
	}
	if m.ignoreMerges {
		if id, ok := m.vocab[word]; ok {
			return append(out, id), nil
		}
	}
	m.mu.RLock()
	ids, hit := m.cache[word]
	m.mu.RUnlock()
	if hit {
		return append(out, ids...), nil
	}
	ids, err := m.merge(m.symbols(word, nil))
	if err != nil {
		return out, err
	}
	if len(word) <= cacheMaxWordLen {
		m.mu.Lock()
		if len(m.cache) >= cacheMaxEntries {
			clear(m.cache)
		}
		m.cache[word] = ids
		m.mu.Unlock()
	}
	return append(out, ids...), nil
}

// symbols splits word into the initial symbol ids: one per character when the character
// (with the subword prefix or suffix where those apply) is in the vocabulary, else its
// <0xNN> byte tokens when byte fallback is on and all of them exist, else the unknown token
// (consecutive unknowns fused into one with fuse_unk). Without an unknown token such a
// character is dropped, as the reference implementation does.
func (m *bpe) symbols(word string, ids []int) []int {
	unkPending := false
	for i := 0; i < len(word); {
		_, w := utf8.DecodeRuneInString(word[i:])
		s := word[i : i+w]
		if m.prefix != "" && i > 0 {
			s = m.prefix + s
		}
		if m.suffix != "" && i+w == len(word) {
			s += m.suffix
		}
		i += w
		if id, ok := m.vocab[s]; ok {
			if unkPending {
				ids = append(ids, m.unkID)
				unkPending = false
			}
			ids = append(ids, id)
			continue
		}
		if m.byteFallback && m.hasBytes(s) {
			// The reference adds byte tokens without flushing a pending unknown token
			// first, so a fused unknown can end up after them; keep that order.
			for k := 0; k < len(s); k++ {
				ids = append(ids, m.byteIDs[s[k]])
			}
			continue
		}
		if m.unkToken == "" {
			continue
		}
		if unkPending && !m.fuseUnk {
			ids = append(ids, m.unkID)
		}
		unkPending = true
	}
	if unkPending {
		ids = append(ids, m.unkID)
	}
	return ids
}

func (m *bpe) hasBytes(s string) bool {
	for k := 0; k < len(s); k++ {
		if m.byteIDs[s[k]] < 0 {
			return false
		}
	}
	return true
}

// merge applies the merge rules to the symbol ids: always the applicable pair with the
// lowest rank, the leftmost one on ties, until none applies. Symbols form a linked list
// and candidate pairs sit in a min-heap, so a word of n symbols costs O(n log n).
func (m *bpe) merge(ids []int) ([]int, error) {
	for _, id := range ids {
		if id < 0 {
			return nil, fmt.Errorf("%w: unknown token %q is not in the vocabulary", ErrUnsupported, m.unkToken)
		}
	}
	if len(ids) < 2 {
		return ids, nil
	}
	n := len(ids)
	next := make([]int, n)
	prev := make([]int, n)
	for i := range ids {
		next[i], prev[i] = i+1, i-1
	}
	next[n-1] = -1
	h := pairHeap(make([]pairCand, 0, n))
	push := func(pos int) {
		if pos < 0 || next[pos] < 0 {
			return
		}
		if r, ok := m.merges[pairKey(ids[pos], ids[next[pos]])]; ok {
			h.push(pairCand{rank: r.rank, pos: pos, left: ids[pos], right: ids[next[pos]], id: r.id})
		}
	}
	for i := 0; i < n-1; i++ {
		push(i)
	}
	for len(h) > 0 {
		c := h.pop()
		q := next[c.pos]
		// Skip candidates that an earlier merge made stale: merged tokens only grow, so a
		// changed symbol never carries its old id again.
		if ids[c.pos] != c.left || q < 0 || ids[q] != c.right {
			continue
		}
		ids[c.pos] = c.id
		ids[q] = -1
		next[c.pos] = next[q]
		if next[q] >= 0 {
			prev[next[q]] = c.pos
		}
		push(prev[c.pos])
		push(c.pos)
	}
	out := ids[:0]
	for i := 0; i >= 0; i = next[i] {
		out = append(out, ids[i])
	}
	return out, nil
}

type pairCand struct {
	rank, pos, left, right, id int
}

// pairHeap is a binary min-heap ordered by (rank, pos).
type pairHeap []pairCand

func (h pairHeap) less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}

func (h *pairHeap) push(c pairCand) {
	*h = append(*h, c)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *pairHeap) pop() pairCand {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l, r, small := 2*i+1, 2*i+2, i
		if l < len(s) && s.less(l, small) {
			small = l
		}
		if r < len(s) && s.less(r, small) {
			small = r
		}
		if small == i {
			break
		}
		s[i], s[small] = s[small], s[i]
		i = small
	}
	*h = s
	return top
}

func pairKey(left, right int) uint64 { return uint64(uint32(left))<<32 | uint64(uint32(right)) }

// parseBPE builds the BPE model from its tokenizer.json fields.
func parseBPE(mj *modelJSON, vocab map[string]int) (*bpe, error) {
	if mj.Dropout != nil && *mj.Dropout != 0 {
		return nil, unsupported("model", "BPE dropout %v", *mj.Dropout)
	}
	m := &bpe{
		vocab: vocab, merges: make(map[uint64]mergeRule, len(mj.Merges)),
		unkID: -1, fuseUnk: mj.FuseUnk, byteFallback: mj.ByteFallback,
		ignoreMerges: mj.IgnoreMerges, cache: map[string][]int{},
	}
	if mj.UnkToken != nil {
		m.unkToken = *mj.UnkToken
		if id, ok := m.vocab[m.unkToken]; ok {
			m.unkID = id
		}
	}
	if mj.ContinuingSubwordPrefix != nil {
		m.prefix = *mj.ContinuingSubwordPrefix
	}
	if mj.EndOfWordSuffix != nil {
		m.suffix = *mj.EndOfWordSuffix
	}
	for b := range m.byteIDs {
		m.byteIDs[b] = -1
		if id, ok := m.vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
			m.byteIDs[b] = id
		}
	}
	for rank, rawMerge := range mj.Merges {
		a, b, err := parseMerge(rawMerge)
		if err != nil {
			return nil, malformed("model", fmt.Errorf("merge %d: %w", rank, err))
		}
		aID, okA := m.vocab[a]
		bID, okB := m.vocab[b]
		newID, okN := m.vocab[a+strings.TrimPrefix(b, m.prefix)]
		if !okA || !okB || !okN {
			return nil, malformed("model", fmt.Errorf("merge %d %q %q: token not in the vocabulary", rank, a, b))
		}
		m.merges[pairKey(aID, bID)] = mergeRule{rank: rank, id: newID}
	}
	return m, nil
}

// parseMerge accepts both spellings of a merge: "a b" and ["a", "b"].
func parseMerge(raw json.RawMessage) (string, string, error) {
	var pair []string
	if err := json.Unmarshal(raw, &pair); err == nil {
		if len(pair) != 2 {
			return "", "", fmt.Errorf("want 2 parts, got %d", len(pair))
		}
		return pair[0], pair[1], nil
	}
	var line string
	if err := json.Unmarshal(raw, &line); err != nil {
		return "", "", err
	}
	parts := strings.Split(line, " ")
	if len(parts) != 2 {
		return "", "", fmt.Errorf("%q is not two space-separated tokens", line)
	}
	return parts[0], parts[1], nil
}
