package pop3

import (
	"encoding/base64"
	"sort"
	"strings"
)

// Redacted replaces a secret in text.
const Redacted = "<redacted>"

// Redact returns s with every trace of secret replaced by "<redacted>": the
// secret itself, and its base64 forms as SASL payloads carry it (PLAIN,
// LOGIN, XOAUTH2, OAUTHBEARER), which a server may echo in a refusal.
//
// Inside a payload the secret can start at any byte, so its base64 form
// depends on where it falls in a group of three bytes. For each of the three
// alignments, Redact looks for the run of base64 characters that the secret
// alone determines, in the standard and the URL alphabet. A few bits at
// either end of the secret may stay visible in such a form; the secret
// cannot be read back from them.
func Redact(s, secret string) string {
	if secret == "" || s == "" {
		return s
	}
	for _, f := range redactForms(secret) {
		s = strings.ReplaceAll(s, f, Redacted)
	}
	return s
}

// redactForms returns the secret and its base64 cores, longest first.
func redactForms(secret string) []string {
	forms := []string{secret}
	for k := 0; k < 3; k++ {
		data := make([]byte, k+len(secret))
		copy(data[k:], secret)
		enc := base64.StdEncoding.EncodeToString(data)
		start := 0
		if k > 0 {
			start = 4 // the first group mixes in the bytes before the secret
		}
		end := len(data) / 3 * 4 // a last, partial group mixes in the bytes after it
		if end-start < 4 {
			continue
		}
		core := enc[start:end]
		forms = append(forms, core, strings.NewReplacer("+", "-", "/", "_").Replace(core))
	}
	sort.SliceStable(forms, func(i, j int) bool { return len(forms[i]) > len(forms[j]) })
	return forms
}

// containsSecret reports whether Redact would change s.
func containsSecret(s, secret string) bool {
	return secret != "" && Redact(s, secret) != s
}
