package evaluate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// Metric is one named number of a Report. NaN (an undefined correlation, say) is
// written as null in JSON and "n/a" in the table.
type Metric struct {
	Name  string
	Value float64
}

// MarshalJSON writes {"name": …, "value": …} with a null value for NaN and ±Inf.
func (m Metric) MarshalJSON() ([]byte, error) {
	var v any = m.Value
	if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
		v = nil
	}
	return json.Marshal(struct {
		Name  string `json:"name"`
		Value any    `json:"value"`
	}{m.Name, v})
}

// Sample is one generated answer, kept in a report for reading.
type Sample struct {
	Prompt    string `json:"prompt"`
	Output    string `json:"output"`
	Gold      string `json:"gold,omitempty"`
	Extracted string `json:"extracted,omitempty"`
}

// Report is the outcome of one evaluation (Run), printed by Table and saved by
// WriteJSON.
type Report struct {
	Task     Task     `json:"task"`
	Model    string   `json:"model,omitempty"`
	Data     string   `json:"data,omitempty"`
	Examples int      `json:"examples"`
	Metrics  []Metric `json:"metrics"`
	Samples  []Sample `json:"samples,omitempty"`
}

// Metric returns the value of the named metric.
func (r *Report) Metric(name string) (float64, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m.Value, true
		}
	}
	return 0, false
}

func (r *Report) add(name string, v float64) { r.Metrics = append(r.Metrics, Metric{name, v}) }

// Table writes the report as an aligned two-column table.
func (r *Report) Table(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "task\t%s\n", r.Task)
	if r.Model != "" {
		fmt.Fprintf(tw, "model\t%s\n", r.Model)
	}
	if r.Data != "" {
		fmt.Fprintf(tw, "data\t%s\n", r.Data)
	}
	fmt.Fprintf(tw, "examples\t%d\n", r.Examples)
	for _, m := range r.Metrics {
		fmt.Fprintf(tw, "%s\t%s\n", m.Name, formatValue(m.Value))
	}
	return tw.Flush()
}

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "n/a"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.4f", v)
}

// JSON returns the report as indented JSON.
func (r *Report) JSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("evaluate: report: %w", err)
	}
	return buf.Bytes(), nil
}

// String is the table.
func (r *Report) String() string {
	var b strings.Builder
	r.Table(&b)
	return b.String()
}
