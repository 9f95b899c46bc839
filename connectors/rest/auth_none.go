package rest

import (
	"net/http"

	"casesync/engine"
)

// newNoneAuth sends no credentials.
func newNoneAuth(*Client, *engine.Auth) (authenticator, error) {
	return &staticAuth{h: http.Header{}}, nil
}
