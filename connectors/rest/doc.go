// Package rest is the one generic REST connector: every remote system is
// reached through a Client built from a compiled engine.Connector, with no
// Go code per system.
//
// It owns what talking HTTP takes: the auth kinds (auth_*.go, a table keyed
// by the schema's discriminator), the paginators (page_*.go, likewise),
// request building and body normalisation, retries with exponential backoff
// and full jitter, Retry-After, the per-connector rate limit and
// concurrency cap (shared by every pipeline through Pool), error
// classification into engine classes with the server's own message, and
// request logs and counters.
//
// Every log line and error message passes through an internal/redact
// Redactor that knows the connector's resolved secrets and every token it
// obtains; URLs are logged with secret-looking query values masked.
//
// It must not know any particular system: names of systems appear only in
// specs and in internal/fakes. It must not know the runner either: it
// reports failures as *engine.RemoteError and lets the runner decide.
package rest
