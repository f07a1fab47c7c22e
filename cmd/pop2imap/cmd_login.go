package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/pop2imap/pop2imap/internal/oauthtoken"
	"github.com/pop2imap/pop2imap/internal/secret"
)

// loginOptions holds the flags of `pop2imap login`.
type loginOptions struct {
	Provider         string
	ClientID         string
	ClientSecretFile string
	Tenant           string
	TokenFile        string
	DeviceAuthURL    string
	AuthURL          string
	TokenURL         string
	Scopes           []string
	Timeout          time.Duration
}

// AddFlags registers the flags of login on fs.
func (o *loginOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Provider, "provider", "", "`NAME` of a known provider: microsoft (device code) or gmail (browser on this computer)")
	fs.StringVar(&o.ClientID, "client-id", "", "the OAuth2 client `ID` of your app registration")
	fs.StringVar(&o.ClientSecretFile, "client-secret-file", "", "read the client secret from `FILE` (Gmail desktop apps need one)")
	fs.StringVar(&o.Tenant, "tenant", "common", "Microsoft `TENANT`: common, organizations, consumers, or a tenant id or domain")
	fs.StringVar(&o.TokenFile, "token-file", "", "write the tokens to `FILE` (mode 0600); give it to --pop3-oauth2-token-file or --imap-oauth2-token-file")
	fs.StringVar(&o.DeviceAuthURL, "device-auth-url", "", "device authorization endpoint `URL` of another provider (RFC 8628)")
	fs.StringVar(&o.AuthURL, "auth-url", "", "authorization endpoint `URL` of another provider, for a browser login with a loopback redirect")
	fs.StringVar(&o.TokenURL, "token-url", "", "token endpoint `URL` of another provider")
	fs.StringArrayVar(&o.Scopes, "scope", nil, "`SCOPE` to ask for from another provider (repeat, or separate with spaces)")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "give up when the login is not approved within this long")
}

func runLoginCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o loginOptions
	if fs, err := parseFlags("login", args, stderr, o.AddFlags,
		"Usage: pop2imap login --provider gmail|microsoft --client-id ID [--client-secret-file FILE] [--tenant T] --token-file FILE\n"+
			"       pop2imap login --device-auth-url URL --token-url URL --scope SCOPE --client-id ID --token-file FILE\n"); fs == nil {
		return err
	}
	login, device, err := o.login()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.TokenFile), 0o700); err != nil {
		return fmt.Errorf("creating the directory of the token file: %w", err)
	}
	login.Prompt = func(p oauthtoken.Prompt) {
		switch {
		case p.Code != "" && !p.Expires.IsZero():
			fmt.Fprintf(stderr, "To sign in, open %s in any browser and enter the code %s (it expires in %s).\n",
				p.URL, p.Code, time.Until(p.Expires).Round(time.Minute))
		case p.Code != "":
			fmt.Fprintf(stderr, "To sign in, open %s in any browser and enter the code %s.\n", p.URL, p.Code)
		default:
			fmt.Fprintf(stderr, "To sign in, open this address in a browser on this computer:\n\n  %s\n\n", p.URL)
		}
		fmt.Fprintln(stderr, "Waiting for the approval...")
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var tok *oauthtoken.Token
	if device {
		tok, err = oauthtoken.DeviceLogin(ctx, login)
	} else {
		tok, err = oauthtoken.LoopbackLogin(ctx, login)
	}
	if err != nil {
		return err
	}
	if err := oauthtoken.WriteFile(o.TokenFile, tok); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pop2imap: tokens saved to %s; use --pop3-oauth2-token-file %s or --imap-oauth2-token-file %s\n",
		o.TokenFile, o.TokenFile, o.TokenFile)
	return nil
}

// login checks the flags and says which flow to run: the device flow, or
// the browser with a loopback redirect.
func (o *loginOptions) login() (l *oauthtoken.Login, device bool, err error) {
	if o.TokenFile == "" {
		return nil, false, usageErrorf("missing --token-file")
	}
	if o.ClientID == "" {
		return nil, false, usageErrorf("missing --client-id (register an app with the provider: see the README)")
	}
	custom := o.DeviceAuthURL != "" || o.AuthURL != "" || o.TokenURL != "" || len(o.Scopes) > 0
	l = &oauthtoken.Login{ClientID: o.ClientID}
	if o.ClientSecretFile != "" {
		// Read by the rules of every secret file: the first line, and
		// refused when empty or readable by other users.
		src, err := secret.Ref{Kind: secret.File, Value: o.ClientSecretFile}.Open(secret.Options{What: "OAuth2 client secret"})
		if err != nil {
			return nil, false, &usageError{msg: err.Error(), err: err}
		}
		if l.ClientSecret, err = src.Resolve(context.Background()); err != nil {
			return nil, false, err
		}
	}
	switch {
	case o.Provider != "" && custom:
		return nil, false, usageErrorf("--provider cannot be combined with --device-auth-url, --auth-url, --token-url or --scope")
	case o.Provider == "microsoft":
		l.Provider = oauthtoken.Microsoft(o.Tenant)
		return l, true, nil
	case o.Provider == "gmail" || o.Provider == "google":
		if l.ClientSecret == "" {
			return nil, false, usageErrorf("--provider gmail needs --client-secret-file: Google's desktop app clients have a client secret")
		}
		l.Provider = oauthtoken.Google
		return l, false, nil
	case o.Provider != "":
		return nil, false, usageErrorf("unknown --provider %q (want microsoft or gmail, or give the endpoints with --device-auth-url or --auth-url and --token-url)", o.Provider)
	case !custom:
		return nil, false, usageErrorf("missing --provider (or --device-auth-url/--auth-url, --token-url and --scope for another provider)")
	case o.TokenURL == "" || (o.DeviceAuthURL == "") == (o.AuthURL == ""):
		return nil, false, usageErrorf("another provider needs --token-url and exactly one of --device-auth-url and --auth-url")
	}
	var scopes []string
	for _, s := range o.Scopes {
		scopes = append(scopes, strings.Fields(s)...)
	}
	l.Provider = oauthtoken.Provider{DeviceAuthURL: o.DeviceAuthURL, AuthURL: o.AuthURL, TokenURL: o.TokenURL, Scopes: scopes}
	return l, o.DeviceAuthURL != "", nil
}
