package oauthtoken

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// fileVersion is the format of the token file; a file with another
// version is refused rather than half understood.
const fileVersion = 1

// Token is the content of a token file: the tokens, and everything a
// refresh needs besides them.
type Token struct {
	Version  int    `json:"version"`
	Provider string `json:"provider,omitempty"` // "microsoft", "gmail" or "" for a custom one: informative
	TokenURL string `json:"token_url"`
	ClientID string `json:"client_id"`
	// ClientSecret is the secret of a desktop app registration (Google
	// issues one and wants it back, though it cannot be kept secret in an
	// installed program); "" for public clients such as Microsoft's.
	ClientSecret string    `json:"client_secret,omitempty"`
	Scopes       []string  `json:"scopes,omitempty"`
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"` // zero: the server gave none; valid until refused
	RefreshToken string    `json:"refresh_token"`
}

// String never shows the tokens or the client secret, so that a Token
// printed by mistake (as a value or a pointer, with %v or %+v) leaks
// nothing.
func (t Token) String() string {
	return fmt.Sprintf("oauth2 token for client %s at %s, expiry %s", t.ClientID, t.TokenURL, t.Expiry.Format(time.RFC3339))
}

// GoString is String for %#v.
func (t Token) GoString() string { return t.String() }

// check says what a usable token file lacks, or nil.
func (t *Token) check() error {
	switch {
	case t.Version != fileVersion:
		return fmt.Errorf("unknown format version %d (want %d)", t.Version, fileVersion)
	case t.TokenURL == "":
		return errors.New("no token_url")
	case t.ClientID == "":
		return errors.New("no client_id")
	case t.RefreshToken == "":
		return errors.New("no refresh_token (the login did not grant offline access)")
	}
	return checkEndpoint(t.TokenURL)
}

// checkEndpoint refuses an endpoint that would carry the refresh token
// unencrypted anywhere but this machine.
func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("bad endpoint URL: %v", err)
	}
	switch {
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("endpoint %q is not https (plain http only to a loopback address)", u.Redacted())
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// fresh reports whether the access token can be used at now: it is set,
// is not the one the server refused, and has more than a minute left.
func (t *Token) fresh(now time.Time, refused string) bool {
	if t.AccessToken == "" || t.AccessToken == refused {
		return false
	}
	return t.Expiry.IsZero() || now.Add(refreshMargin).Before(t.Expiry)
}

// refreshMargin is how long before its expiry an access token is
// replaced, so that it does not expire between the check and the login.
const refreshMargin = time.Minute

// update takes in a token the server just issued. A server that does not
// rotate refresh tokens sends none back; the old one stays.
func (t *Token) update(tok *oauth2.Token) {
	t.AccessToken = tok.AccessToken
	t.TokenType = tok.TokenType
	t.Expiry = tok.Expiry
	if tok.RefreshToken != "" {
		t.RefreshToken = tok.RefreshToken
	}
}

func (t *Token) config() *oauth2.Config {
	return &oauth2.Config{
		ClientID:     t.ClientID,
		ClientSecret: t.ClientSecret,
		Scopes:       t.Scopes,
		// In the form body: what both Google and Microsoft accept, and
		// what a public client without a secret must do. Auto-detection
		// would send a second request after every refusal.
		Endpoint: oauth2.Endpoint{TokenURL: t.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
	}
}

// ReadFile reads and checks a token file. It refuses a file that others
// than its owner may read or write.
func ReadFile(path string) (*Token, error) {
	fail := func(err error) error {
		return &Error{Op: "read", Path: path, Reason: ReasonFile, Err: err}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fail(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fail(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fail(errors.New("not a regular file"))
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fail(fmt.Errorf("the file is open to others (mode %04o); run chmod 600 on it", fi.Mode().Perm()))
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, fail(err)
	}
	var t Token
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		// The decoder's message names a field or an offset, never a value.
		return nil, fail(fmt.Errorf("not a token file: %v", err))
	}
	if err := t.check(); err != nil {
		return nil, fail(err)
	}
	return &t, nil
}

// WriteFile replaces the token file atomically: temporary file in the same
// directory with mode 0600, fsync, rename, fsync of the directory. It takes
// the file's lock, so that it never races a refresh in another process.
func WriteFile(path string, t *Token) error {
	unlock, err := lockPath(nil, path)
	if err != nil {
		return err
	}
	defer unlock()
	return writeLocked(path, t)
}

// writeLocked is WriteFile for a caller that holds the lock.
func writeLocked(path string, t *Token) error {
	fail := func(err error) error {
		return &Error{Op: "write", Path: path, Reason: ReasonFile, Err: err}
	}
	t.Version = fileVersion
	data, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fail(err)
	}
	data = append(data, '\n')
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*") // mode 0600
	if err != nil {
		return fail(err)
	}
	renamed := false
	defer func() {
		if !renamed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fail(err)
	}
	renamed = true
	d, err := os.Open(dir)
	if err != nil {
		return fail(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fail(err)
	}
	return nil
}
