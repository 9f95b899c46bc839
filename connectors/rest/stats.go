package rest

import "sync/atomic"

// Stats are a connector's counters since it was built.
type Stats struct {
	Connector string
	Requests  int64 // HTTP requests sent, logins and retries included
	Retries   int64 // requests repeated after a retryable failure
	Throttled int64 // 429 responses
	Logins    int64 // logins started (token_login, oauth2)
	BytesIn   int64 // response body bytes read
	BytesOut  int64 // request body bytes sent
}

type counters struct {
	requests, retries, throttled, logins, bytesIn, bytesOut atomic.Int64
}

// Stats returns a snapshot of the connector's counters.
func (c *Client) Stats() Stats {
	return Stats{
		Connector: c.name,
		Requests:  c.stats.requests.Load(),
		Retries:   c.stats.retries.Load(),
		Throttled: c.stats.throttled.Load(),
		Logins:    c.stats.logins.Load(),
		BytesIn:   c.stats.bytesIn.Load(),
		BytesOut:  c.stats.bytesOut.Load(),
	}
}
