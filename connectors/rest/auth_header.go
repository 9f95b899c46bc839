package rest

import (
	"errors"
	"fmt"
	"net/http"

	"casesync/engine"
)

// newHeaderAuth sends one static header, such as a bearer token or an API
// key: name (default Authorization), prefix, then the secret value.
func newHeaderAuth(c *Client, a *engine.Auth) (authenticator, error) {
	spec := a.Spec.Header
	if spec == nil {
		return nil, errors.New("header: missing settings")
	}
	v, err := c.resolve(spec.Value)
	if err != nil {
		return nil, fmt.Errorf("value: %w", err)
	}
	name := spec.Name
	if name == "" {
		name = "Authorization"
	}
	h := http.Header{}
	h.Set(name, spec.Prefix+v)
	return &staticAuth{h: h}, nil
}
