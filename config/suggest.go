package config

import (
	"fmt"
	"reflect"
	"strings"
)

// field is one key of a section, from the struct's yaml and alias tags.
type field struct {
	key     string
	aliases []string
	index   int
	typ     reflect.Type
}

// fieldsOf lists the keys of a section type in declaration order.
func fieldsOf(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		key, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || key == "" || key == "-" {
			continue
		}
		f := field{key: key, index: i, typ: sf.Type}
		if a := sf.Tag.Get("alias"); a != "" {
			f.aliases = strings.Split(a, ",")
		}
		out = append(out, f)
	}
	return out
}

func lookupField(t reflect.Type, key string) (field, bool) {
	for _, f := range fieldsOf(t) {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

// isSection reports whether values of type t are decoded key by key (a struct without
// its own YAML form).
func isSection(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	_, leaf := nodeFormOf(reflect.New(t).Elem())
	return !leaf
}

// keyHint suggests what an unknown key in the section of type t (at path, "" for the top
// level) was meant to be: the nearest key of the section (by edit distance, also over the
// names other trainers use), else a key of that name in another section, else the list
// of valid keys.
func keyHint(key string, t reflect.Type, path string) string {
	norm := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(key), "-", "_"))
	fields := fieldsOf(t)
	if f, ok := nearest(norm, fields); ok {
		return fmt.Sprintf("did you mean `%s`?", f.key)
	}
	if p, ok := elsewhere(norm, reflect.TypeOf(Config{}), "", path); ok {
		return fmt.Sprintf("did you mean `%s`? (`%s` is in section %s)", p, p[strings.LastIndex(p, ".")+1:], p[:strings.LastIndex(p, ".")])
	}
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	what := "section " + path
	if path == "" {
		what = "the top level"
	}
	return fmt.Sprintf("the keys of %s are %s", what, strings.Join(keys, ", "))
}

// nearest finds the field whose key or alias is closest to norm: an exact match, else the
// smallest Damerau–Levenshtein distance within a length-dependent limit, else a key that
// contains norm or is contained in it (at least 4 characters).
func nearest(norm string, fields []field) (field, bool) {
	best, bestDist := field{}, maxDistance(norm)+1
	for _, f := range fields {
		for _, cand := range append([]string{f.key}, f.aliases...) {
			if d := Distance(norm, cand); d < bestDist {
				best, bestDist = f, d
			}
		}
	}
	if bestDist <= maxDistance(norm) {
		return best, true
	}
	if len(norm) < 4 {
		return field{}, false
	}
	for _, f := range fields {
		for _, cand := range append([]string{f.key}, f.aliases...) {
			if len(cand) >= 4 && (strings.Contains(cand, norm) || strings.Contains(norm, cand)) {
				return f, true
			}
		}
	}
	return field{}, false
}

// maxDistance is how many edits a suggestion may be away: none for keys of one or two
// characters (k, l, r would all be one edit from each other), then 1, 2, 3.
func maxDistance(s string) int {
	switch n := len([]rune(s)); {
	case n <= 2:
		return 0
	case n <= 4:
		return 1
	case n <= 8:
		return 2
	default:
		return 3
	}
}

// elsewhere looks for norm as a key (or alias, or one edit away) of another section and
// returns its path.
func elsewhere(norm string, t reflect.Type, path, skip string) (string, bool) {
	for _, f := range fieldsOf(t) {
		p := join(path, f.key)
		if isSection(f.typ) {
			if p == skip {
				continue
			}
			if found, ok := elsewhere(norm, f.typ, p, skip); ok {
				return found, true
			}
			continue
		}
		if path == "" {
			continue
		}
		for _, cand := range append([]string{f.key}, f.aliases...) {
			if norm == cand || (len(norm) >= 5 && Distance(norm, cand) <= 1) {
				return p, true
			}
		}
	}
	return "", false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Distance is the optimal-string-alignment Damerau–Levenshtein distance between a and b:
// the fewest insertions, deletions, substitutions and transpositions of adjacent
// characters (each substring edited at most once) that turn a into b.
func Distance(a, b string) int {
	s, t := []rune(a), []rune(b)
	// d[i][j] is the distance between s[:i] and t[:j]; three rows suffice.
	prev2 := make([]int, len(t)+1)
	prev := make([]int, len(t)+1)
	cur := make([]int, len(t)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(s); i++ {
		cur[0] = i
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(t)]
}
