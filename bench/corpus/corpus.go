// Package corpus generates a deterministic mail corpus for benchmarks: for a
// given seed, message i is always the same bytes, whatever else is generated.
//
// The size mix follows a typical personal mailbox: mostly 2 to 50 KB text and
// HTML multiparts, about 5% with a base64 attachment of 0.2 to 5 MB. Headers
// look real: Received chains, encoded-words in UTF-8 and ISO-8859-1 (B and Q),
// long folded DKIM signatures, Message-IDs (a few missing). Lines end in CRLF
// and some body lines start with a dot, so POP3 dot-stuffing is exercised.
package corpus

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"strconv"
	"strings"
	"time"
)

// Kind is the shape of one message.
type Kind int

const (
	Plain       Kind = iota // text/plain, quoted-printable or 8bit
	Alternative             // multipart/alternative, text and HTML
	Attachment              // multipart/mixed with a base64 attachment
	Huge                    // multipart/mixed with one attachment of a given size
)

// Spec describes message i of a corpus before it is written.
type Spec struct {
	Index int
	Kind  Kind
	// Target is the approximate size in bytes the body aims for.
	Target int64
}

// SpecFor returns the shape of message i for seed.
func SpecFor(seed uint64, i int) Spec {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	s := Spec{Index: i}
	switch p := r.IntN(100); {
	case p < 5:
		s.Kind = Attachment
		s.Target = 200_000 + r.Int64N(4_800_000)
	case p < 45:
		s.Kind = Alternative
		s.Target = 2_000 + r.Int64N(48_000)
	default:
		s.Kind = Plain
		s.Target = 2_000 + r.Int64N(48_000)
	}
	return s
}

// SmallSpecFor returns the shape of message i of a corpus of small text
// messages, 2 to 8 KB: the many-messages case, where what costs is the
// bookkeeping per message rather than the bytes.
func SmallSpecFor(seed uint64, i int) Spec {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	return Spec{Index: i, Kind: Plain, Target: 2_000 + r.Int64N(6_000)}
}

// HugeSpec is a message with one attachment of about size bytes (20 MB and
// 100 MB for the memory benchmark).
func HugeSpec(i int, size int64) Spec { return Spec{Index: i, Kind: Huge, Target: size} }

// Write writes message s for seed to w, streaming: a 100 MB message never
// sits in memory. It returns the bytes written.
func Write(w io.Writer, seed uint64, s Spec) (int64, error) {
	cw := &countWriter{w: bufio.NewWriterSize(w, 64<<10)}
	g := &gen{r: rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, uint64(s.Index)+1)), w: cw, spec: s}
	g.message()
	if cw.err == nil {
		cw.err = cw.w.(*bufio.Writer).Flush()
	}
	return cw.n, cw.err
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

type gen struct {
	r    *rand.Rand
	w    *countWriter
	spec Spec
}

func (g *gen) line(format string, args ...any) {
	fmt.Fprintf(g.w, format, args...)
	io.WriteString(g.w, "\r\n")
}

var (
	firstNames = []string{"Anna", "José", "Zoë", "Jürgen", "François", "Łukasz", "Søren", "Ana María", "Chloé", "Mikko", "Ирина", "Δημήτρης", "Ayşe", "田中", "Bob", "Carol", "Dave", "Eve"}
	lastNames  = []string{"Müller", "García", "Núñez", "Dubois", "Kowalski", "Ødegård", "Smith", "O'Brien", "Петрова", "Παπαδόπουλος", "Yılmaz", "太郎", "Jones", "Lee"}
	domains    = []string{"example.org", "example.com", "mail.example.net", "lists.example.edu", "beispiel.de", "exemple.fr"}
	subjects   = []string{"Re: Quarterly report", "Überweisung bestätigt", "Fwd: Photos from the weekend ☀️", "Réunion de lundi", "Your invoice #%d", "Заседание комитета", "Re: Re: lunch?", "[list] Release %d.%d announced", "Meeting notes – café", "Παραγγελία %d", "Aktualisierung für Ihr Konto", "Re: 日本語のテスト"}
	words      = strings.Fields("the of and to in is for on that with as was at by this from be have or are an it not which we you all were can has more their will one about other into time only new some could these two may first then do any like such our over also after most made through where before many well back good years much because between both under being same last never while again place around however home small found house every own given here week thanks please regards meeting report attached schedule budget draft review update grüße über straße déjà naïve façade señor café smörgåsbord")
)

func (g *gen) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

func (g *gen) date(base time.Time) time.Time {
	return base.Add(-time.Duration(g.r.Int64N(int64(400 * 24 * time.Hour))))
}

// address returns a From/To style address whose display name is an
// encoded-word when it is not ASCII.
func (g *gen) address() string {
	name := g.pick(firstNames) + " " + g.pick(lastNames)
	local := strings.ToLower(fmt.Sprintf("user%d", g.r.IntN(100000)))
	enc := mime.QEncoding
	if g.r.IntN(2) == 0 {
		enc = mime.BEncoding
	}
	return fmt.Sprintf("%s <%s@%s>", enc.Encode("UTF-8", name), local, g.pick(domains))
}

func (g *gen) subject() string {
	s := g.pick(subjects)
	for strings.Contains(s, "%d") {
		s = strings.Replace(s, "%d", strconv.Itoa(g.r.IntN(9999)), 1)
	}
	switch g.r.IntN(3) {
	case 0:
		return mime.BEncoding.Encode("UTF-8", s)
	case 1:
		// Latin-1 text where it can be, as older mailers send it.
		if latin, ok := toLatin1(s); ok {
			return mime.QEncoding.Encode("ISO-8859-1", latin)
		}
		return mime.QEncoding.Encode("UTF-8", s)
	}
	return mime.QEncoding.Encode("UTF-8", s)
}

func toLatin1(s string) (string, bool) {
	var b strings.Builder
	for _, r := range s {
		if r > 0xff {
			return "", false
		}
		b.WriteByte(byte(r))
	}
	return b.String(), true
}

func (g *gen) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.r.IntN(16)]
	}
	return string(b)
}

func (g *gen) header(contentType string) {
	base := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	sent := g.date(base)
	dom := g.pick(domains)
	g.line("Return-Path: <bounce-%s@%s>", g.hex(8), dom)
	hops := 2 + g.r.IntN(3)
	for h := 0; h < hops; h++ {
		t := sent.Add(time.Duration(hops-h) * time.Duration(1+g.r.IntN(30)) * time.Second)
		g.line("Received: from mx%d.%s (mx%d.%s [192.0.2.%d])", g.r.IntN(9), g.pick(domains), h, dom, g.r.IntN(250)+1)
		g.line("\tby mail.example.org (Postfix) with ESMTPS id %s", strings.ToUpper(g.hex(10)))
		g.line("\tfor <alice@example.org>; %s", t.Format(time.RFC1123Z))
	}
	if g.r.IntN(3) == 0 {
		g.line("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=sel%d;", dom, g.r.IntN(9))
		g.line("\th=from:to:subject:date:message-id:mime-version:content-type;")
		g.line("\tbh=%s=;", base64.StdEncoding.EncodeToString([]byte(g.hex(32)))[:43])
		sig := base64.StdEncoding.EncodeToString([]byte(g.hex(192)))
		for len(sig) > 70 {
			g.line("\t%s", sig[:70])
			sig = sig[70:]
		}
		g.line("\t%s", sig)
	}
	g.line("From: %s", g.address())
	g.line("To: %s", g.address())
	if g.r.IntN(4) == 0 {
		g.line("Cc: %s,", g.address())
		g.line(" %s", g.address())
	}
	g.line("Subject: %s", g.subject())
	g.line("Date: %s", sent.In(time.FixedZone("", 3600*(g.r.IntN(25)-12))).Format(time.RFC1123Z))
	if g.r.IntN(20) != 0 {
		g.line("Message-ID: <%s.%d@%s>", g.hex(16), g.spec.Index, dom)
	}
	if g.r.IntN(5) == 0 {
		g.line("List-Id: Project discussion <dev.lists.example.edu>")
	}
	g.line("X-Mailer: %s", g.pick([]string{"Thunderbird 115.3", "Apple Mail (2.3731)", "Microsoft Outlook 16.0", "Roundcube Webmail/1.6", "K-9 Mail"}))
	g.line("MIME-Version: 1.0")
	g.line("Content-Type: %s", contentType)
}

// text writes about n bytes of prose in CRLF lines of up to 76 bytes; now and
// then a line starts with a dot.
func (g *gen) text(n int64, html bool) {
	var written int64
	var b strings.Builder
	if html {
		io.WriteString(g.w, "<html><body>\r\n<p>")
	}
	for written < n {
		b.Reset()
		if g.r.IntN(40) == 0 {
			b.WriteString(".")
		}
		for b.Len() < 40+g.r.IntN(30) {
			b.WriteString(g.pick(words))
			b.WriteByte(' ')
		}
		s := strings.TrimRight(b.String(), " ")
		if html && g.r.IntN(8) == 0 {
			s += "</p><p>"
		}
		io.WriteString(g.w, s)
		io.WriteString(g.w, "\r\n")
		written += int64(len(s) + 2)
	}
	if html {
		io.WriteString(g.w, "</p></body></html>\r\n")
	}
}

// attachment writes n bytes of random data, base64 in 76-byte lines.
func (g *gen) attachment(n int64, name string) {
	g.line("Content-Type: application/octet-stream; name=\"%s\"", name)
	g.line("Content-Transfer-Encoding: base64")
	g.line("Content-Disposition: attachment; filename*=UTF-8''%s", strings.ReplaceAll(name, " ", "%20"))
	g.line("")
	raw := make([]byte, 57*64)
	enc := make([]byte, base64.StdEncoding.EncodedLen(57))
	for n > 0 {
		chunk := raw[:min(int64(len(raw)), n)]
		for i := 0; i+8 <= len(chunk); i += 8 {
			v := g.r.Uint64()
			for k := 0; k < 8; k++ {
				chunk[i+k] = byte(v >> (8 * k))
			}
		}
		for len(chunk) > 0 {
			l := min(57, len(chunk))
			base64.StdEncoding.Encode(enc, chunk[:l])
			g.w.Write(enc[:base64.StdEncoding.EncodedLen(l)])
			io.WriteString(g.w, "\r\n")
			n -= int64(l)
			chunk = chunk[l:]
		}
	}
}

func (g *gen) message() {
	s := g.spec
	boundary := "=_" + g.hex(24)
	switch s.Kind {
	case Plain:
		if g.r.IntN(2) == 0 {
			g.header("text/plain; charset=UTF-8; format=flowed")
			g.line("Content-Transfer-Encoding: 8bit")
		} else {
			g.header("text/plain; charset=us-ascii")
		}
		g.line("")
		g.text(s.Target, false)
	case Alternative:
		g.header(fmt.Sprintf("multipart/alternative; boundary=\"%s\"", boundary))
		g.line("")
		g.line("This is a multi-part message in MIME format.")
		g.line("--%s", boundary)
		g.line("Content-Type: text/plain; charset=UTF-8")
		g.line("Content-Transfer-Encoding: 8bit")
		g.line("")
		g.text(s.Target*2/5, false)
		g.line("--%s", boundary)
		g.line("Content-Type: text/html; charset=UTF-8")
		g.line("Content-Transfer-Encoding: 8bit")
		g.line("")
		g.text(s.Target*3/5, true)
		g.line("--%s--", boundary)
	case Attachment, Huge:
		g.header(fmt.Sprintf("multipart/mixed; boundary=\"%s\"", boundary))
		g.line("")
		g.line("--%s", boundary)
		g.line("Content-Type: text/plain; charset=UTF-8")
		g.line("")
		g.text(500+g.r.Int64N(3000), false)
		g.line("--%s", boundary)
		raw := s.Target * 3 / 4 // base64 grows by 4/3 plus CRLFs
		name := fmt.Sprintf("Rechnung-%d-Übersicht.pdf", g.r.IntN(10000))
		if s.Kind == Huge {
			name = fmt.Sprintf("backup-%d.tar.gz", s.Index)
		}
		g.attachment(raw, name)
		g.line("--%s--", boundary)
	}
}
