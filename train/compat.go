package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/lrtrain/lrtrain/adapter"
)

// shapingKeys are the options that decide what the adapters are: a checkpoint can only
// be resumed (or its adapters loaded) with the same values. The adapter's come from
// adapter.ShapingKeys (every adapter setting but dropout); the base model is compared
// separately, by identity (BaseModel).
var shapingKeys = func() map[string]bool {
	keys := map[string]bool{"model.num_labels": true}
	for _, k := range adapter.ShapingKeys() {
		keys["adapter."+k] = true
	}
	return keys
}()

// silentKeys may differ without a warning: where the run writes, how it resumes, and
// the model's path (whose content is compared by identity).
var silentKeys = map[string]bool{
	"checkpoint.resume": true, "checkpoint.dir": true, "output.dir": true, "model.path": true,
	"train.device": true,
}

// reconcile applies the rule for options that disagree with a checkpoint's: a shaping
// key that differs is an error naming every such key; any other key that differs keeps
// the new value and yields a warning that names it with both values.
func reconcile(saved, now Options) (warnings []string, err error) {
	a, err := flatten(saved)
	if err != nil {
		return nil, err
	}
	b, err := flatten(now)
	if err != nil {
		return nil, err
	}
	keys := slices.Sorted(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var errs []error
	for _, k := range keys {
		if a[k] == b[k] || silentKeys[k] {
			continue
		}
		if shapingKeys[k] {
			errs = append(errs, fmt.Errorf("%s is %s in the checkpoint and %s in the configuration", k, show(a[k]), show(b[k])))
			continue
		}
		warnings = append(warnings, fmt.Sprintf("%s changed from %s (checkpoint) to %s (configuration); using the configuration's value", k, show(a[k]), show(b[k])))
	}
	if len(errs) > 0 {
		return warnings, fmt.Errorf("%w (adapter-shaping settings must match): %w", ErrMismatch, errors.Join(errs...))
	}
	return warnings, nil
}

func show(v string) string {
	if v == "" {
		return "unset"
	}
	return v
}

// flatten turns options into dotted key paths ("train.lr") and their JSON values.
func flatten(o Options) (map[string]string, error) {
	raw, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("train: encode options: %w", err)
	}
	var tree map[string]any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return nil, fmt.Errorf("train: decode options: %w", err)
	}
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok && !strings.HasSuffix(prefix, ".template") {
			for k, x := range m {
				walk(strings.TrimPrefix(prefix+"."+k, "."), x)
			}
			return
		}
		b, _ := json.Marshal(v) // decoded JSON always encodes
		out[prefix] = string(b)
	}
	walk("", tree)
	return out, nil
}
