package config

import (
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// applyOverrides puts every "section.key=value" override into the YAML tree, so that the
// value is decoded and checked exactly like one written in the file. The value is read
// as YAML: 1e-4 is a number, [q_proj, v_proj] a list, an empty value the empty string.
func (d *decoder) applyOverrides(root *yaml.Node, overrides []string) {
	for _, o := range overrides {
		where := "--set " + o
		keyPath, raw, ok := strings.Cut(o, "=")
		keyPath = strings.TrimSpace(keyPath)
		if !ok || keyPath == "" {
			d.issues = append(d.issues, &Issue{Err: ErrOverride, Where: where,
				Msg: fmt.Sprintf("override %q is not section.key=value", o), Hint: "e.g. --set train.lr=1e-4"})
			continue
		}
		parts := strings.Split(keyPath, ".")
		if !d.checkPath(parts, where) {
			continue
		}
		val, err := parseValue(raw)
		if err != nil {
			d.issues = append(d.issues, &Issue{Err: ErrOverride, Key: keyPath, Where: where,
				Msg: fmt.Sprintf("the value of %s is not valid YAML: %v", keyPath, err)})
			continue
		}
		d.mark(val, where)
		d.set(root, parts, val, where)
	}
}

// checkPath reports (as an issue) a path that does not name a key.
func (d *decoder) checkPath(parts []string, where string) bool {
	t, path := reflect.TypeOf(Config{}), ""
	for _, p := range parts {
		if !isSection(t) {
			d.issues = append(d.issues, &Issue{Err: ErrOverride, Key: path, Where: where,
				Msg: fmt.Sprintf("`%s` is a key, not a section", path)})
			return false
		}
		f, ok := lookupField(t, p)
		if !ok {
			msg := fmt.Sprintf("unknown key `%s` %s", p, sectionName(path))
			if path == "" {
				msg = fmt.Sprintf("unknown section `%s`", p)
			}
			d.issues = append(d.issues, &Issue{Err: ErrUnknownKey, Key: join(path, p), Where: where,
				Msg: msg, Hint: keyHint(p, t, path)})
			return false
		}
		path, t = join(path, f.key), f.typ
	}
	if _, scalar := reflect.New(t).Interface().(scalarForm); isSection(t) && !scalar {
		d.issues = append(d.issues, &Issue{Err: ErrOverride, Key: path, Where: where,
			Msg:  fmt.Sprintf("`%s` is a section", path),
			Hint: fmt.Sprintf("set one of its keys, e.g. --set %s=…", join(path, fieldsOf(t)[0].key))})
		return false
	}
	return true
}

// parseValue reads an override's value as a YAML node.
func parseValue(raw string) (*yaml.Node, error) {
	if strings.TrimSpace(raw) == "" {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: ""}, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(raw), &doc); err != nil {
		return nil, err
	}
	return doc.Content[0], nil
}

// mark records that n and everything under it came from an override.
func (d *decoder) mark(n *yaml.Node, where string) {
	d.origin[n] = where
	for _, c := range n.Content {
		d.mark(c, where)
	}
}

// set puts val at the key path under the mapping root, creating sections as needed.
func (d *decoder) set(root *yaml.Node, parts []string, val *yaml.Node, where string) {
	n := root
	for i, p := range parts {
		last := i == len(parts)-1
		k := findKey(n, p)
		if k < 0 {
			key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p}
			next := val
			if !last {
				next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
				d.origin[next] = where
			}
			d.origin[key] = where
			n.Content = append(n.Content, key, next)
			n = next
			continue
		}
		if last {
			d.shadowed = append(d.shadowed, shadowedValue{parts: parts, node: n.Content[k+1], by: where})
			n.Content[k+1] = val
			return
		}
		child := n.Content[k+1]
		switch {
		case child.Kind == yaml.ScalarNode && child.ShortTag() == "!!null":
			// A section left empty in the file.
			child = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: child.Line}
			n.Content[k+1] = child
		case child.Kind != yaml.MappingNode:
			return // the decoder reports the file's value as a type error
		}
		n = child
	}
}

// findKey returns the index of key's key node in the mapping n, or -1.
func findKey(n *yaml.Node, key string) int {
	for k := 0; k+1 < len(n.Content); k += 2 {
		if n.Content[k].Kind == yaml.ScalarNode && n.Content[k].Value == key {
			return k
		}
	}
	return -1
}

// shadowedValue is a value of the file (or of an earlier --set) that an override replaced.
type shadowedValue struct {
	parts []string
	node  *yaml.Node
	by    string // "--set a.b=v"
}

// checkShadowed decodes every replaced value into a scratch configuration and reports its
// type errors: a wrong value in the file is an error even while an override hides it
// (the file is wrong for the next run that does not override it).
func (d *decoder) checkShadowed() {
	for _, s := range d.shadowed {
		v, path := reflect.ValueOf(Default()).Elem(), ""
		for _, p := range s.parts {
			f, _ := lookupField(v.Type(), p) // checkPath accepted the path
			v, path = v.Field(f.index), join(path, f.key)
		}
		scratch := &decoder{file: d.file, origin: d.origin, present: map[string]bool{}, where: map[string]string{}}
		scratch.value(path, s.node, v)
		for _, is := range scratch.issues {
			hint := "overridden by " + s.by + ", but the value there is still checked"
			if is.Hint != "" {
				hint = is.Hint + "; " + hint
			}
			is.Hint = hint
			d.issues = append(d.issues, is)
		}
	}
}
