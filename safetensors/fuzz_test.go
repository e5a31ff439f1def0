package safetensors

import (
	"bytes"
	"os"
	"testing"
)

// FuzzOpen feeds arbitrary images to the parser behind Open. Under plain `go test` only the
// seeds run; fuzz with: go test ./safetensors -run '^$' -fuzz FuzzOpen -fuzztime 60s
func FuzzOpen(f *testing.F) {
	if golden, err := os.ReadFile(goldenPath); err == nil {
		f.Add(golden)
	}
	var buf bytes.Buffer
	Encode(&buf, []Tensor{
		{"a", F16, []int64{2}, []byte{0, 0x3c, 0, 0xbc}, nil},
		{"b", I8, []int64{}, []byte{0xff}, nil},
	}, map[string]string{"k": "v"})
	f.Add(buf.Bytes())
	f.Add(image(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}`, 3))
	f.Add(image(`{"a":{"dtype":"BF16","shape":[0,1],"data_offsets":[0,0]}}`, 0))
	f.Add(image(`{}`, 0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Decode(data)
		if err != nil {
			return
		}
		exercise(t, file)
		// A file that parses must survive a round trip through the writer unchanged in content.
		var ts []Tensor
		for _, name := range file.Names() {
			ti, _ := file.Info(name)
			b, _ := file.Bytes(name)
			ts = append(ts, Tensor{name, ti.DType, ti.Shape, b, nil})
		}
		var out bytes.Buffer
		if err := Encode(&out, ts, file.Metadata()); err != nil {
			// Names the writer refuses (empty) may be read; nothing else may fail.
			if file.hdr.infos[""].DType == "" {
				t.Fatalf("re-encoding a valid file: %v", err)
			}
			return
		}
		again, err := Decode(out.Bytes())
		if err != nil {
			t.Fatalf("re-encoded file does not parse: %v", err)
		}
		for _, name := range file.Names() {
			a, _ := file.Bytes(name)
			b, _ := again.Bytes(name)
			if !bytes.Equal(a, b) {
				t.Fatalf("tensor %q changed in the round trip", name)
			}
		}
	})
}
