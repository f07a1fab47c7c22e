package pop3

import (
	"encoding/base64"
	"strings"
	"testing"
)

// base64Cores returns, for a secret placed after 0, 1 and 2 other bytes,
// the base64 characters whose groups of three bytes lie wholly inside the
// secret: what a reader could decode back to a part of it. It is written
// apart from redactForms, as the reference the tests check against.
func base64Cores(secret string) []string {
	var out []string
	for k := 0; k < 3; k++ {
		enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\xff", k) + secret + "\xff\xff"))
		first := (k + 2) / 3          // the first group wholly inside the secret
		last := (k + len(secret)) / 3 // one past the last such group
		if last > first {
			out = append(out, enc[first*4:last*4])
		}
	}
	return out
}

// TestRedact: the secret and every base64 form a SASL payload can give it
// are replaced, wherever the secret falls in the payload; text without it
// is left alone.
func TestRedact(t *testing.T) {
	for _, secret := range []string{"hunter2-Long-Password", "p@ss", "ya29.a0AfB_byC-token_with/slashes+plus", "ünïcødé-pass"} {
		for pre := 0; pre < 7; pre++ {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding} {
				payload := strings.Repeat("u", pre) + "\x00" + secret + "\x01\x01"
				text := "NO [AUTHENTICATIONFAILED] bad payload " + enc.EncodeToString([]byte(payload)) + " from client"
				got := Redact(text, secret)
				if !strings.HasPrefix(got, "NO [AUTHENTICATIONFAILED] bad payload ") || !strings.HasSuffix(got, " from client") {
					t.Errorf("Redact changed the text around the payload: %q", got)
				}
				for _, core := range base64Cores("\x00" + secret) {
					core = strings.TrimRight(core, "=")
					if enc == base64.URLEncoding {
						core = strings.NewReplacer("+", "-", "/", "_").Replace(core)
					}
					// Only the secret's own groups need hiding; the first
					// one also holds the NUL before it.
					inner := core[min(4, len(core)):]
					if len(inner) >= 4 && strings.Contains(got, inner) {
						t.Errorf("secret %q after %d bytes: %q still holds %q", secret, pre, got, inner)
					}
				}
			}
		}
		if got := Redact("bad password "+secret+" given", secret); got != "bad password <redacted> given" {
			t.Errorf("plain: %q", got)
		}
	}
	if got := Redact("nothing to hide here", "hunter2"); got != "nothing to hide here" {
		t.Errorf("Redact changed text without the secret: %q", got)
	}
	if got := Redact("text", ""); got != "text" {
		t.Errorf("empty secret: %q", got)
	}
}
