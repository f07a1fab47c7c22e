package oauthtoken

import (
	"context"
	"net/http"
	"time"

	"golang.org/x/oauth2"
)

// Options adjust a Source or a login; the zero value is fine.
type Options struct {
	// HTTPClient talks to the authorization server; nil means one with a
	// 30-second timeout per request.
	HTTPClient *http.Client
	// Now is the clock the expiry is checked against; nil means time.Now.
	Now func() time.Time
}

func (o *Options) httpClient() *http.Client {
	if o != nil && o.HTTPClient != nil {
		return o.HTTPClient
	}
	return &http.Client{Timeout: 30 * time.Second}
}

func (o *Options) now() time.Time {
	if o != nil && o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Source hands out the access token of one token file, refreshing it as
// needed. It reads the file at every call, so tokens that another process
// refreshed are picked up; it is safe for concurrent use.
type Source struct {
	path string
	opts *Options
}

// Open checks that path is a usable token file and returns its Source.
func Open(path string, opts *Options) (*Source, error) {
	if _, err := ReadFile(path); err != nil {
		return nil, err
	}
	return &Source{path: path, opts: opts}, nil
}

// Path returns the token file's path.
func (s *Source) Path() string { return s.path }

// AccessToken returns an access token with more than a minute left,
// refreshing it first if needed.
func (s *Source) AccessToken(ctx context.Context) (string, error) {
	return s.token(ctx, "")
}

// Refresh returns an access token other than refused, which a server has
// just turned down: a new one from the token endpoint, unless another
// process or goroutine has already replaced it in the file.
func (s *Source) Refresh(ctx context.Context, refused string) (string, error) {
	return s.token(ctx, refused)
}

func (s *Source) token(ctx context.Context, refused string) (string, error) {
	t, err := ReadFile(s.path)
	if err != nil {
		return "", err
	}
	if t.fresh(s.opts.now(), refused) {
		return t.AccessToken, nil
	}
	unlock, err := lockPath(ctx, s.path)
	if err != nil {
		return "", err
	}
	defer unlock()
	// Read again under the lock: whoever held it may have refreshed, and
	// the refresh token we read before may be spent already.
	if t, err = ReadFile(s.path); err != nil {
		return "", err
	}
	if t.fresh(s.opts.now(), refused) {
		return t.AccessToken, nil
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.opts.httpClient())
	tok, err := t.config().TokenSource(ctx, &oauth2.Token{RefreshToken: t.RefreshToken}).Token()
	if err != nil {
		return "", classify("refresh", s.path, err)
	}
	t.update(tok)
	if err := writeLocked(s.path, t); err != nil {
		// The server may have rotated the refresh token and we could not
		// keep the new one: the next refresh will fail and ask for a new
		// login. Nothing better can be done than say so now.
		return "", err
	}
	return t.AccessToken, nil
}
