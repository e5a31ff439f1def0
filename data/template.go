package data

import (
	"fmt"
	"strings"
)

// Template renders the prompt of an instruction record. {instruction} and {input} are
// replaced in one pass, so braces inside the record's own text are left alone.
type Template struct {
	// WithInput is used when the record's input is not blank; it must contain
	// {instruction} and {input}.
	WithInput string
	// NoInput is used when the input is blank; it must contain {instruction} and must not
	// contain {input}.
	NoInput string
}

// AlpacaTemplate is the Stanford Alpaca prompt, the default.
var AlpacaTemplate = Template{
	WithInput: "Below is an instruction that describes a task, paired with an input that provides " +
		"further context. Write a response that appropriately completes the request.\n\n" +
		"### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
	NoInput: "Below is an instruction that describes a task. Write a response that appropriately " +
		"completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n",
}

// Validate checks the placeholders.
func (t Template) Validate() error {
	switch {
	case !strings.Contains(t.WithInput, "{instruction}") || !strings.Contains(t.WithInput, "{input}"):
		return fmt.Errorf("%w: template with input must contain {instruction} and {input}", ErrConfig)
	case !strings.Contains(t.NoInput, "{instruction}"):
		return fmt.Errorf("%w: template without input must contain {instruction}", ErrConfig)
	case strings.Contains(t.NoInput, "{input}"):
		return fmt.Errorf("%w: template without input must not contain {input}", ErrConfig)
	}
	return nil
}

// Prompt renders the prompt for an instruction and an input (which may be blank).
func (t Template) Prompt(instruction, input string) string {
	if strings.TrimSpace(input) == "" {
		return strings.NewReplacer("{instruction}", instruction).Replace(t.NoInput)
	}
	return strings.NewReplacer("{instruction}", instruction, "{input}", input).Replace(t.WithInput)
}
