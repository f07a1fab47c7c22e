// Package oauthtoken obtains OAuth2 tokens for mail logins and keeps them
// in a token file that refreshes itself.
//
// A token file is JSON with mode 0600. Besides the access and refresh
// tokens it holds the token endpoint, the client id (and secret, for
// providers such as Google that want one even from desktop apps) and the
// scopes, so that a refresh needs nothing else. It is always replaced
// whole and atomically: a temporary file in the same directory is written,
// fsync'd and renamed over the old one, and the directory is fsync'd.
//
// Several processes may share one file (the bridge and a migrate, or two
// shards). A refresh takes an exclusive flock on a sibling lock file
// (FILE.lock), reads the file again and refreshes only if the token it
// finds still needs it, so that a refresh token the server rotates on use
// is never spent twice and a write is never lost.
//
// Source hands out the access token, refreshing it with the refresh token
// when it is within a minute of expiry, or when the mail server refused
// it. DeviceLogin (RFC 8628, for Microsoft and any provider with a device
// authorization endpoint) and LoopbackLogin (RFC 8252 with PKCE, RFC 7636,
// for Google) obtain the first tokens. The exchanges and refreshes go
// through golang.org/x/oauth2.
//
// Failures are *Error values whose Reason says what will fix them. The
// refresh token never appears in an error.
//
// The package never prints: what a user must do to log in goes to a
// callback.
package oauthtoken
