// Package redact keeps secret values out of everything casesync writes:
// log lines, error messages, dry-run output and URLs.
//
// A Redactor holds the resolved secret values of a run (passwords, API
// keys, tokens obtained by logging in) and replaces each occurrence, in its
// plain, URL-escaped and JSON-escaped spellings, with a fixed mask. Handler
// wraps any slog.Handler so every message and attribute passes through a
// Redactor before it is written; SafeURL formats a URL without userinfo
// and with secret-looking query parameters masked.
//
// The package knows nothing of specs, connectors or HTTP clients: callers
// hand it values and get redacted text back. It imports only the standard
// library.
package redact
