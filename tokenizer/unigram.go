package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// unigram is the SentencePiece unigram model (T5, ALBERT, XLNet style): a word is cut into
// the vocabulary pieces whose scores (log probabilities) sum highest, found by Viterbi over
// the word's characters. A character no piece starts with costs the lowest score minus 10
// and becomes the unknown token; consecutive unknown characters fuse into one. With
// byte_fallback an unknown piece becomes its <0xNN> byte tokens when they all exist.
type unigram struct {
	pieces       []string
	scores       []float64
	ids          map[string]int // a duplicated piece maps to its last id
	trie         pieceTrie
	minScore     float64
	unkID        int // -1 when the model has none
	byteFallback bool
}

// unkPenalty is what an unknown character costs below the lowest piece score.
const unkPenalty = 10.0

func parseUnigram(mj *modelJSON) (*unigram, error) {
	if isNull(mj.Vocab) {
		return nil, malformed("model", errors.New("Unigram without vocab"))
	}
	var pairs [][2]json.RawMessage
	if err := json.Unmarshal(mj.Vocab, &pairs); err != nil {
		return nil, malformed("model", fmt.Errorf("Unigram vocab (want [[piece, score], ...]): %w", err))
	}
	pieces := make([]string, len(pairs))
	scores := make([]float64, len(pairs))
	for i, p := range pairs {
		if err := json.Unmarshal(p[0], &pieces[i]); err != nil {
			return nil, malformed("model", fmt.Errorf("Unigram vocab entry %d: %w", i, err))
		}
		if err := json.Unmarshal(p[1], &scores[i]); err != nil {
			return nil, malformed("model", fmt.Errorf("Unigram vocab entry %d: %w", i, err))
		}
	}
	m := &unigram{pieces: pieces, scores: scores, ids: make(map[string]int, len(pieces)), minScore: math.Inf(1), unkID: -1,
		byteFallback: mj.ByteFallback, trie: pieceTrie{nodes: []pieceNode{{index: -1}}}}
	if mj.UnkID != nil {
		if len(pieces) == 0 {
			return nil, malformed("model", errors.New("Unigram vocab is empty but unk_id is set"))
		}
		if *mj.UnkID < 0 || *mj.UnkID >= len(pieces) {
			return nil, malformed("model", fmt.Errorf("Unigram unk_id %d is outside the vocabulary (size %d)", *mj.UnkID, len(pieces)))
		}
		m.unkID = *mj.UnkID
	}
	for id, p := range pieces {
		m.ids[p] = id
		if p != "" {
			m.trie.insert(p, id)
		}
		m.minScore = min(m.minScore, scores[id])
	}
	return m, nil
}

func (m *unigram) tokenID(s string) (int, bool) {
	id, ok := m.ids[s]
	return id, ok
}

func (m *unigram) forEach(f func(tok string, id int)) {
	for id, p := range m.pieces {
		f(p, id)
	}
}

func (m *unigram) tokenize(word string, out []int) ([]int, error) {
	pieces, err := m.viterbi(word)
	if err != nil {
		return out, err
	}
	for _, p := range pieces {
		if id, ok := m.ids[p]; ok {
			out = append(out, id)
			continue
		}
		if m.byteFallback {
			n, ok := len(out), true
			for k := 0; k < len(p) && ok; k++ {
				var id int
				id, ok = m.ids[fmt.Sprintf("<0x%02X>", p[k])]
				out = append(out, id)
			}
			if ok {
				continue
			}
			out = out[:n]
		}
		if m.unkID < 0 {
			return out, fmt.Errorf("%w: Unigram model without unk_id meets an unknown piece %q", ErrUnsupported, p)
		}
		out = append(out, m.unkID)
	}
	return out, nil
}

// viterbi returns the best segmentation of s, unknown runs fused, exactly as the
// reference's optimized encoder: candidates are visited by start then length, and a later
// one replaces the best path to its end only with a strictly higher score.
func (m *unigram) viterbi(s string) ([]string, error) {
	type node struct {
		id    int
		score float64
		start int // -1: not reached
	}
	best := make([]node, len(s)+1)
	for i := range best {
		best[i].start = -1
	}
	unkScore := m.minScore - unkPenalty
	relax := func(end, start, id int, score float64) {
		if n := &best[end]; n.start < 0 || score > n.score {
			*n = node{id: id, score: score, start: start}
		}
	}
	for start := 0; start < len(s); {
		here := best[start].score
		_, mblen := utf8.DecodeRuneInString(s[start:])
		single := false
		m.trie.prefixes(s, start, func(end, index int) {
			id := m.ids[m.pieces[index]]
			relax(end, start, id, m.scores[id]+here)
			single = single || end-start == mblen
		})
		if !single {
			if m.unkID < 0 {
				return nil, fmt.Errorf("%w: Unigram model without unk_id meets the unknown character %q", ErrUnsupported, s[start:start+mblen])
			}
			relax(start+mblen, start, m.unkID, unkScore+here)
		}
		start += mblen
	}
	var rev []string
	fuseEnd := -1 // end of the unknown run being fused, -1 when none
	for end := len(s); end > 0; {
		n := best[end]
		if n.id == m.unkID {
			if fuseEnd < 0 {
				fuseEnd = end
			}
		} else {
			if fuseEnd >= 0 {
				rev = append(rev, s[end:fuseEnd])
				fuseEnd = -1
			}
			rev = append(rev, s[n.start:end])
		}
		end = n.start
	}
	if fuseEnd >= 0 {
		rev = append(rev, s[:fuseEnd])
	}
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	return rev, nil
}

// pieceTrie is a byte trie over the vocabulary for common-prefix search.
type pieceTrie struct{ nodes []pieceNode }

type pieceNode struct {
	next  map[byte]int32
	index int // vocabulary index of a piece ending here, -1 when none
}

// insert adds piece (non-empty) with its index in the vocabulary.
func (t *pieceTrie) insert(piece string, index int) {
	n := int32(0)
	for i := 0; i < len(piece); i++ {
		c, ok := t.nodes[n].next[piece[i]]
		if !ok {
			if t.nodes[n].next == nil {
				t.nodes[n].next = map[byte]int32{}
			}
			c = int32(len(t.nodes))
			t.nodes[n].next[piece[i]] = c
			t.nodes = append(t.nodes, pieceNode{index: -1})
		}
		n = c
	}
	t.nodes[n].index = index
}

// prefixes calls f(end, index) for every piece that s[start:] starts with, shortest first.
func (t *pieceTrie) prefixes(s string, start int, f func(end, index int)) {
	n := int32(0)
	for j := start; j < len(s); j++ {
		c, ok := t.nodes[n].next[s[j]]
		if !ok {
			return
		}
		n = c
		if t.nodes[n].index >= 0 {
			f(j+1, t.nodes[n].index)
		}
	}
}
