package main

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1": 1, "4096": 4096, "64KiB": 64 << 10, "256MiB": 256 << 20, "256M": 256 << 20, "1G": 1 << 30,
		"2gib": 2 << 30, "10 MB": 10 << 20, "100B": 100,
	} {
		if got, err := parseSize(in); got != want || err != nil {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "1.5M", "MiB", "1TiB", "99999999999G"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d; want an error", in, got)
		}
	}
	if s := formatSize(256 << 20); s != "256MiB" {
		t.Errorf("formatSize = %q", s)
	}
}
