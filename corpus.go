// Package pop2imap holds the sample mailbox that `pop2imap demo` migrates.
// The tool itself lives in cmd/pop2imap; the pipeline in package bridge.
package pop2imap

import (
	"embed"
	"io/fs"
	"sort"
)

//go:embed testdata/mail/*.eml
var sampleMail embed.FS

// SampleMail returns the demo messages in name order. They are chosen to be
// hard to copy faithfully: dot-stuffed lines, 8-bit headers, bare LF line
// endings, no Message-ID, a Message-ID shared by two messages, no header at
// all, an empty message and a 400 KB attachment.
func SampleMail() ([][]byte, error) {
	names, err := fs.Glob(sampleMail, "testdata/mail/*.eml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([][]byte, 0, len(names))
	for _, n := range names {
		b, err := sampleMail.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}
