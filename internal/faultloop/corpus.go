package faultloop

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Mail is one message of a test corpus.
type Mail struct {
	Name string
	Data []byte
}

// LongLineSize is the length of the generated single-line message.
const LongLineSize = 1 << 20

// BadMail returns the messages in dir (testdata/badmail), in name order,
// with the generated 1 MiB single-line message added as "10-long-line".
func BadMail(dir string) ([]Mail, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("faultloop: no *.eml in %s", dir)
	}
	var out []Mail
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, Mail{Name: strings.TrimSuffix(filepath.Base(n), ".eml"), Data: b})
	}
	out = append(out, Mail{Name: "10-long-line", Data: LongLine()})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// LongLine is a message whose body is one line of LongLineSize bytes.
func LongLine() []byte {
	var b bytes.Buffer
	b.WriteString("From: long@example.org\r\nTo: alice@example.com\r\nSubject: one line of 1 MiB\r\n")
	b.WriteString("Date: Thu, 12 Mar 2020 10:00:00 +0000\r\nMessage-ID: <long-line@badmail.example>\r\n\r\n")
	for i := 0; i < LongLineSize; i++ {
		b.WriteByte("abcdefghijklmnopqrstuvwxyz0123456789"[i%36])
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// Generated returns n ordinary messages, the same for the same seed: mostly
// a few hundred bytes to a few KB, one in twenty up to 100 KB; every
// seventh without Message-ID; some with lines of dots. Each is different
// from every other.
func Generated(seed uint64, n int) []Mail {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	out := make([]Mail, 0, n)
	for i := 0; i < n; i++ {
		var b bytes.Buffer
		fmt.Fprintf(&b, "From: sender%d@example.org\r\nTo: alice@example.com\r\nSubject: generated %d (seed %d)\r\n", i, i, seed)
		fmt.Fprintf(&b, "Date: Mon, %d Feb 2015 %02d:%02d:%02d +0000\r\n", 1+i%28, i/3600%24, i/60%60, i%60)
		if i%7 != 3 {
			fmt.Fprintf(&b, "Message-ID: <gen-%d-%d@faultloop.example>\r\n", seed, i)
		}
		b.WriteString("\r\n")
		size := 200 + rng.IntN(3000)
		if rng.IntN(20) == 0 {
			size = 10_000 + rng.IntN(90_000)
		}
		for l := 0; b.Len() < size; l++ {
			switch rng.IntN(30) {
			case 0:
				b.WriteString(".\r\n")
			case 1:
				b.WriteString("..dots\r\n")
			}
			fmt.Fprintf(&b, "%d/%d %s\r\n", i, l, strings.Repeat(string(rune('a'+rng.IntN(26))), rng.IntN(76)))
		}
		out = append(out, Mail{Name: fmt.Sprintf("gen-%03d", i), Data: b.Bytes()})
	}
	return out
}
