package config

import (
	"bytes"
	"fmt"

	"gopkg.in/yaml.v3"
)

// Marshal writes the fully resolved configuration as YAML: every key, defaults filled in
// (alpha, data.seed, checkpoint and export directories, export dtype, epochs), for
// checkpoint manifests and the run directory. Decoding the output gives the same
// configuration.
func (c *Config) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("config: marshal: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: marshal: %w", err)
	}
	return b.Bytes(), nil
}
