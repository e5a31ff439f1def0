package config

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// nodeForm is a value with its own YAML forms (Paths; see nodeFormOf); decodeNode
// returns a *wantError when the node has none of them.
type nodeForm interface{ decodeNode(n *yaml.Node) error }

// scalarForm is a section that may also be written as one scalar (Template's preset name).
type scalarForm interface{ fromScalar(s string) error }

// Load reads the YAML file at path (none when path is ""), applies the --set overrides
// ("section.key=value", later ones win), fills the defaults and validates the result.
// Every problem is reported at once, as an Issues list.
func Load(path string, overrides []string) (*Config, error) {
	var src []byte
	if path != "" {
		var err error
		if src, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	c, err := Decode(src, path, overrides)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Decode is Load without the file system: it decodes src (named name in messages),
// applies the overrides and fills the defaults, but does not Validate. Decoding is
// strict: unknown keys, duplicate keys and values of the wrong type are errors.
// A key whose value is null (or empty) keeps its default.
func Decode(src []byte, name string, overrides []string) (*Config, error) {
	if name == "" {
		name = "<config>"
	}
	root, issue := parseDocument(src, name)
	if issue != nil {
		return nil, Issues{issue}
	}
	d := &decoder{file: name, origin: map[*yaml.Node]string{}, present: map[string]bool{}, where: map[string]string{}}
	d.applyOverrides(root, overrides)
	c := Default()
	d.section("", root, reflect.ValueOf(c).Elem())
	d.checkShadowed()
	if len(d.issues) > 0 {
		return nil, d.issues
	}
	c.resolve(d.present)
	c.where = d.where
	return c, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// parseDocument returns the top-level mapping of src (an empty one for an empty file).
func parseDocument(src []byte, name string) (*yaml.Node, *Issue) {
	dec := yaml.NewDecoder(strings.NewReader(string(src)))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, nil
	}
	if err != nil {
		where, msg := name, err.Error()
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			where, msg = name+":"+m[1], msg[len(m[0]):]
		}
		return nil, &Issue{Err: ErrSyntax, Where: where, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, &Issue{Err: ErrSyntax, Where: fmt.Sprintf("%s:%d", name, next.Line),
			Msg: "a second YAML document", Hint: "a config file holds one document"}
	}
	root := doc.Content[0]
	switch {
	case root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null":
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, nil
	case root.Kind != yaml.MappingNode:
		return nil, &Issue{Err: ErrType, Where: fmt.Sprintf("%s:%d", name, root.Line),
			Msg: "the config is not a mapping of sections", Hint: "start with e.g. `model:`"}
	}
	return root, nil
}

// decoder walks the YAML tree against the Config type, collecting issues.
type decoder struct {
	file    string
	origin  map[*yaml.Node]string // nodes made by overrides → "--set a.b=v"
	issues  Issues
	present map[string]bool   // key paths set by the file or the overrides
	where   map[string]string // key path → where it was set
	// shadowed are the values that overrides replaced, checked all the same.
	shadowed []shadowedValue
}

func (d *decoder) at(n *yaml.Node) string {
	if s, ok := d.origin[n]; ok {
		return s
	}
	return fmt.Sprintf("%s:%d", d.file, n.Line)
}

func sectionName(path string) string {
	if path == "" {
		return "at the top level"
	}
	return "in section " + path
}

// section decodes a mapping node into the struct v, key by key.
func (d *decoder) section(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.typeIssue(path, n, "a mapping of keys")
		return
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.issues = append(d.issues, &Issue{Err: ErrType, Key: path, Where: d.at(k),
				Msg: fmt.Sprintf("a key that is not a name %s", sectionName(path))})
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.issues = append(d.issues, &Issue{Err: ErrDuplicateKey, Key: join(path, k.Value), Where: d.at(k),
				Msg:  fmt.Sprintf("duplicate key `%s` %s", k.Value, sectionName(path)),
				Hint: "first given at " + d.at(first)})
			continue
		}
		seen[k.Value] = k
		f, ok := lookupField(v.Type(), k.Value)
		if !ok {
			msg := fmt.Sprintf("unknown key `%s` %s", k.Value, sectionName(path))
			if path == "" {
				msg = fmt.Sprintf("unknown section `%s`", k.Value)
			}
			d.issues = append(d.issues, &Issue{Err: ErrUnknownKey, Key: join(path, k.Value), Where: d.at(k),
				Msg:  msg,
				Hint: keyHint(k.Value, v.Type(), path)})
			continue
		}
		d.value(join(path, f.key), val, v.Field(f.index))
	}
}

// value decodes one key's node into v.
func (d *decoder) value(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // null keeps the default
	}
	d.present[path] = true
	d.where[path] = d.at(n)
	if nf, ok := nodeFormOf(v); ok {
		var want *wantError
		if err := nf.decodeNode(n); errors.As(err, &want) {
			d.typeIssue(path, n, want.want)
		}
		return
	}
	if sf, ok := v.Addr().Interface().(scalarForm); ok {
		if n.Kind == yaml.ScalarNode {
			_ = sf.fromScalar(n.Value)
			return
		}
		v.Set(reflect.Zero(v.Type())) // the mapping form replaces the default whole
	}
	if isSection(v.Type()) {
		d.section(path, n, v)
		return
	}
	if want := decodeLeaf(n, v); want != "" {
		d.typeIssue(path, n, want)
	}
}

// typeIssue reports a value that is not what its key takes.
func (d *decoder) typeIssue(path string, n *yaml.Node, want string) {
	key, sec := path, ""
	if i := strings.LastIndex(path, "."); i >= 0 {
		key, sec = path[i+1:], path[:i]
	}
	what := fmt.Sprintf("key `%s` %s", key, sectionName(sec))
	if sec == "" {
		what = fmt.Sprintf("section `%s`", key)
	}
	d.issues = append(d.issues, &Issue{Err: ErrType, Key: path, Where: d.at(n),
		Msg: fmt.Sprintf("%s: expected %s, got %s", what, want, describe(n))})
}

// describe names what a node holds, for type errors.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	}
	return "the string " + strconv.Quote(n.Value)
}

var durationType = reflect.TypeOf(time.Duration(0))

// decodeLeaf sets v from a node of a plain type; it returns what was expected when the
// node does not fit, or "".
func decodeLeaf(n *yaml.Node, v reflect.Value) string {
	tag := n.ShortTag()
	switch {
	case v.Type() == durationType:
		dur, err := time.ParseDuration(n.Value)
		if n.Kind != yaml.ScalarNode || tag != "!!str" || err != nil {
			return "a duration such as 30m or 90s"
		}
		v.SetInt(int64(dur))
		return ""
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		if n.Kind != yaml.SequenceNode {
			return "a list of strings"
		}
		items, err := stringList(n)
		if err != nil {
			return "a list of strings"
		}
		v.Set(reflect.ValueOf(items).Convert(v.Type()))
		return ""
	case v.Kind() == reflect.Array:
		want := fmt.Sprintf("a list of %d numbers", v.Len())
		if n.Kind != yaml.SequenceNode || len(n.Content) != v.Len() {
			return want
		}
		for i, item := range n.Content {
			if decodeLeaf(item, v.Index(i)) != "" {
				return want
			}
		}
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		return leafWant(v)
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
		return ""
	case reflect.Bool:
		var b bool
		if tag != "!!bool" || n.Decode(&b) != nil {
			return "true or false"
		}
		v.SetBool(b)
		return ""
	case reflect.Int, reflect.Int64:
		i, ok := integer(n)
		if !ok || v.OverflowInt(i) {
			return leafWant(v)
		}
		v.SetInt(i)
		return ""
	case reflect.Uint64:
		var u uint64
		if i, ok := integer(n); ok && i >= 0 {
			u = uint64(i)
		} else if tag != "!!int" || n.Decode(&u) != nil {
			return leafWant(v)
		}
		v.SetUint(u)
		return ""
	case reflect.Float64:
		f, ok := number(n)
		if !ok {
			return leafWant(v)
		}
		v.SetFloat(f)
		return ""
	}
	panic("config: no decoder for " + v.Type().String()) // a field type this file does not know
}

// integer reads an int scalar, or a float one with an integral value (1e3).
func integer(n *yaml.Node) (int64, bool) {
	var i int64
	if n.ShortTag() == "!!int" {
		return i, n.Decode(&i) == nil
	}
	f, ok := number(n)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// number reads an int or float scalar (1, 2e-4, .inf); strings are not numbers.
func number(n *yaml.Node) (float64, bool) {
	var f float64
	switch n.ShortTag() {
	case "!!int", "!!float":
		if err := n.Decode(&f); err != nil {
			return 0, false
		}
		return f, true
	}
	return 0, false
}

func leafWant(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float64:
		return "a number"
	}
	return v.Type().String()
}
