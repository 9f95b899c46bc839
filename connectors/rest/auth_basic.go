package rest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"

	"casesync/engine"
)

// newBasicAuth sends HTTP basic credentials on every call.
func newBasicAuth(c *Client, a *engine.Auth) (authenticator, error) {
	spec := a.Spec.Basic
	if spec == nil {
		return nil, errors.New("basic: missing settings")
	}
	user, err := c.resolve(spec.Username)
	if err != nil {
		return nil, fmt.Errorf("username: %w", err)
	}
	pass, err := c.resolve(spec.Password)
	if err != nil {
		return nil, fmt.Errorf("password: %w", err)
	}
	cred := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	c.red.Add(cred) // the encoded pair is as secret as the password
	h := http.Header{}
	h.Set("Authorization", "Basic "+cred)
	return &staticAuth{h: h}, nil
}
