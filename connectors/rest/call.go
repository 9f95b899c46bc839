package rest

import (
	"context"
	"net/http"
	"net/url"

	"casesync/engine"
)

// Call is one concrete request: templates rendered, secrets not resolved
// (the Client resolves Text values itself so they never pass through the
// runner's logs).
type Call struct {
	Method string
	// Path is relative to the connector's base URL, or an absolute URL.
	Path   string
	Query  url.Values
	Header map[string]engine.Text
	// SecretQuery are query parameters whose value is a secret (parameter
	// name → secret name), resolved only when the request is sent.
	SecretQuery map[string]string
	// Body is a JSON-shaped value; nil sends no body.
	Body any
	// Pagination for List; nil means the connector's default, and a
	// connector without one lists a single page.
	Pagination *engine.Pagination
	// Records selects the records array in each page; nil means the whole
	// body is a single record (or, if it is an array, the records).
	Records RecordsFunc
	// Idempotent requests may be repeated freely after an unknown outcome.
	Idempotent bool
	// Label names the caller in logs, e.g. "cases_to_oscar/upsert".
	Label string
	// PathTemplate and QueryTemplate are the request as the spec writes
	// it ("/api/v2/cases/{$target_id}"): logs and errors show them instead
	// of the filled URL, which holds record values (ids, national ids in a
	// filter). Empty: the filled path, with secret-looking values masked.
	PathTemplate  string
	QueryTemplate map[string]string
}

// RecordsFunc extracts the records from a decoded response body.
type RecordsFunc func(ctx context.Context, body any) ([]any, error)

// Response is a decoded response.
type Response struct {
	Status int
	Header http.Header
	Body   any // decoded JSON; nil when empty
}
