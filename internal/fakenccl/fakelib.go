package fakenccl

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

//go:embed testdata/fake_nccl.c testdata/fake_ranks.c testdata/fake_cudart.c
var sources embed.FS

// Libs are the paths of the built fakes.
type Libs struct {
	NCCL   string // .../libnccl.so.2
	Cudart string // .../libcudart.so.12
}

// Build compiles both fakes with the system C compiler (cc, or $CC) into
// dir, which the caller owns (a t.TempDir()). The fake libnccl is
// fake_nccl.c followed by fake_ranks.c, compiled as one unit.
func Build(dir string) (Libs, error) {
	libs := Libs{
		NCCL:   filepath.Join(dir, "libnccl.so.2"),
		Cudart: filepath.Join(dir, "libcudart.so.12"),
	}
	for _, b := range []struct {
		srcs []string
		out  string
	}{
		{[]string{"testdata/fake_nccl.c", "testdata/fake_ranks.c"}, libs.NCCL},
		{[]string{"testdata/fake_cudart.c"}, libs.Cudart},
	} {
		if err := compile(b.srcs, b.out); err != nil {
			return Libs{}, err
		}
	}
	return libs, nil
}

func compile(srcs []string, out string) error {
	var code []byte
	for _, src := range srcs {
		b, err := sources.ReadFile(src)
		if err != nil {
			return fmt.Errorf("fakenccl: %w", err)
		}
		code = append(code, b...)
	}
	src := strings.Join(srcs, " + ")
	cc := strings.Fields(os.Getenv("CC"))
	if len(cc) == 0 {
		cc = []string{"cc"}
	}
	args := append(cc[1:], "-shared", "-fPIC", "-pthread", "-O1", "-Wall", "-Werror", "-x", "c", "-o", out, "-")
	cmd := exec.Command(cc[0], args...)
	cmd.Stdin = bytes.NewReader(code)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("fakenccl: compiling %s: %w\n%s", src, err, stderr.String())
	}
	return nil
}
