package config

import (
	"reflect"
	"testing"
)

func TestDistance(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
		{"flaw", "lawn", 2},
		{"lr", "lr", 0},
		{"ab", "ba", 1},             // one transposition
		{"scheduel", "schedule", 1}, // one transposition
		{"ca", "abc", 3},            // optimal string alignment: no edit of a transposed pair (true Damerau gives 2)
		{"learning_rat", "learning_rate", 1},
		{"größe", "grosse", 3}, // runes, not bytes: ö→o, ß→s, +s
	}
	for _, tc := range cases {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := Distance(tc.b, tc.a); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d (symmetry)", tc.b, tc.a, got, tc.want)
		}
	}
}

// TestAliasesAreUnambiguous keeps the alias tags from pointing one name at two keys of a
// section, or shadowing a real key.
func TestAliasesAreUnambiguous(t *testing.T) {
	var walk func(path string, fields []field)
	walk = func(path string, fields []field) {
		owner := map[string]string{}
		for _, f := range fields {
			owner[f.key] = f.key
		}
		for _, f := range fields {
			for _, a := range f.aliases {
				if o, dup := owner[a]; dup {
					t.Errorf("section %q: alias %q of %q is also %q", path, a, f.key, o)
				}
				owner[a] = f.key
			}
			if isSection(f.typ) {
				walk(join(path, f.key), fieldsOf(f.typ))
			}
		}
	}
	walk("", fieldsOf(reflect.TypeOf(Config{})))
}
