package config

import (
	"errors"
	"testing"
)

func TestParseSize(t *testing.T) {
	good := map[string]int64{
		"5GB": 5e9, "5gb": 5e9, "500MiB": 500 << 20, "1.5GB": 1.5e9, "1024": 1024, "10 KB": 10000,
		"2TiB": 2 << 40, "7B": 7, "1kib": 1024,
	}
	for s, want := range good {
		if got, err := ParseSize(s); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "GB", "-1GB", "0", "5 gigs", "NaNGB", "1e30TB"} {
		if _, err := ParseSize(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseSize(%q) error = %v, want ErrInvalid", s, err)
		}
	}
}
