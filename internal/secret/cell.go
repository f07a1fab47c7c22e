package secret

import "strings"

// cellPrefixes maps the prefixes of a password cell to the kinds they name.
var cellPrefixes = []struct {
	prefix string
	kind   Kind
}{
	{"env:", Env},
	{"file:", File},
	{"cmd:", Command},
}

// LiteralPrefix starts a password cell that is a password as written, even
// when what follows it begins with a reference's prefix.
const LiteralPrefix = "literal:"

// ParseCell reads one password cell of a batch CSV file, where passwords
// may be written out, unlike in the bridge's configuration file. A cell is
// one of:
//
//	env:VAR        the environment variable VAR (Env)
//	file:PATH      the first line of the file PATH (File); the caller
//	               anchors a relative PATH with Options.BaseDir
//	cmd:COMMAND    the first line COMMAND prints (Command)
//	literal:TEXT   the password TEXT, as written
//	anything else  the password, as written
//
// The prefixes are lower-case and must start the cell; a reference's value
// has its surrounding spaces removed, a literal keeps every byte. A
// password that itself starts with env:, file:, cmd: or literal: is written
// with literal: in front ("literal:env:x" is the password "env:x").
// An empty reference value is returned as a Ref all the same, for Open to
// refuse with the usual message.
func ParseCell(s string) (ref Ref, literal string, isRef bool) {
	if rest, ok := strings.CutPrefix(s, LiteralPrefix); ok {
		return Ref{}, rest, false
	}
	for _, p := range cellPrefixes {
		if rest, ok := strings.CutPrefix(s, p.prefix); ok {
			return Ref{Kind: p.kind, Value: strings.TrimSpace(rest)}, "", true
		}
	}
	return Ref{}, s, false
}
